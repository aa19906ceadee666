import { CodeqError } from '@codeq/proto/errors';
import { MAX_LEASE_SECONDS, validateClaim, validateCreate, validateHeartbeat, validateNack, validateResult } from './commands.js';

const fails = (f: () => unknown): { code: string; message: string } => {
  try {
    f();
  } catch (e) {
    if (CodeqError.is(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('did not fail');
};

describe('validateCreate', () => {
  it('reports a missing command in each transport’s words, with the same code', () => {
    expect(fails(() => validateCreate({ payload: { json: {} } }, 0, 'http'))).toEqual({ code: 'VALIDATION_FAILED', message: 'invalid body' });
    expect(fails(() => validateCreate({}, 0, 'grpc'))).toEqual({ code: 'VALIDATION_FAILED', message: 'command is required' });
  });

  it('refuses maxAttempts above 1000 on both transports (no clamping)', () => {
    for (const t of ['http', 'grpc'] as const) {
      expect(fails(() => validateCreate({ command: 'c', payload: { json: 1 }, maxAttempts: 1001 }, 0, t)).message).toBe("invalid 'maxAttempts' (must be <= 1000)");
      expect(validateCreate({ command: 'c', payload: { json: 1 }, maxAttempts: 1000 }, 0, t).maxAttempts).toBe(1000);
    }
  });

  it('checks a negative delay before runAt on the stream, and ignores it next to runAt over HTTP', () => {
    expect(fails(() => validateCreate({ command: 'c', delaySeconds: -1, runAtMs: 5_000 }, 0, 'grpc')).message).toBe('delaySeconds must be >= 0');
    expect(validateCreate({ command: 'c', payload: { json: 1 }, delaySeconds: -1, runAtMs: 5_000 }, 0, 'http').visibleAtMs).toBe(5_000);
    expect(fails(() => validateCreate({ command: 'c', payload: { json: 1 }, runAtMs: NaN }, 0, 'http')).message).toBe("invalid 'runAt' (use RFC3339)");
  });

  it('stores non-JSON text verbatim but refuses NUL in it; unset fields take their defaults', () => {
    expect(validateCreate({ command: 'c', payload: { text: 'raw bytes' } }, 0, 'grpc').payload).toBe('raw bytes');
    expect(fails(() => validateCreate({ command: 'c', payload: { text: 'a\u0000' } }, 0, 'grpc')).message).toBe("invalid 'payload' (must not contain NUL characters)");
    expect(validateCreate({ command: 'c' }, 1_000, 'grpc')).toEqual({ command: 'c', payload: 'null', priority: 0, webhook: null, maxAttempts: 0, idempotencyKey: null, visibleAtMs: null });
  });
});

describe('validateClaim', () => {
  it('bounds the lease the same way for every mode; unset or ≤ 0 is the default', () => {
    for (const mode of ['single', 'batch', 'ready'] as const) {
      const count = mode === 'batch' ? 1 : undefined;
      expect(fails(() => validateClaim({ leaseSeconds: MAX_LEASE_SECONDS + 1, ...(count ? { count } : {}) }, 300, mode)).message).toBe(`invalid 'leaseSeconds' (must be <= ${MAX_LEASE_SECONDS})`);
      expect(validateClaim({ ...(count ? { count } : {}) }, 300, mode).leaseSeconds).toBe(300);
    }
  });

  it('a Ready trims and skips blank commands, refuses an all-blank list, and treats count as a credit', () => {
    expect(validateClaim({ commands: [' a ', ''], count: 0 }, 300, 'ready')).toMatchObject({ commands: ['a'], count: 1 });
    expect(validateClaim({ count: 5000 }, 300, 'ready').count).toBe(1000);
    expect(fails(() => validateClaim({ commands: ['  '] }, 300, 'ready'))).toEqual({ code: 'FORBIDDEN', message: 'event type not allowed' });
    expect(fails(() => validateClaim({ commands: ['a\u0001'] }, 300, 'ready')).message).toBe('invalid command');
    expect(fails(() => validateClaim({ commands: ['  '] }, 300, 'single')).message).toBe('invalid command');
  });
});

describe('lease commands and results', () => {
  it('heartbeat and nack: zero means unset', () => {
    expect(validateHeartbeat('t', { extendSeconds: 0 }, 300)).toEqual({ taskId: 't', extendSeconds: 300 });
    expect(validateNack('t', { delaySeconds: 0 })).toEqual({ taskId: 't', reason: '' });
    expect(validateNack('t', { delaySeconds: 7, leaseId: 'l' })).toEqual({ taskId: 't', reason: '', delaySeconds: 7, leaseId: 'l' });
  });

  it('checks the status before an undecodable result, as grpc-streams §4.5 orders them', () => {
    expect(fails(() => validateResult('t', { status: 'X', resultUndecodable: 'invalid result_json' }, 'grpc')).message).toBe('invalid status (must be COMPLETED or FAILED): "X"');
    expect(fails(() => validateResult('t', { status: 'COMPLETED', resultUndecodable: 'invalid result_json' }, 'grpc')).message).toBe('invalid result_json');
    expect(validateResult('t', { status: 'COMPLETED', result: { a: 1 }, leaseId: 'l' }, 'grpc')).toEqual({ taskId: 't', status: 'COMPLETED', result: '{"a":1}', error: null, artifacts: [], leaseId: 'l' });
  });
});
