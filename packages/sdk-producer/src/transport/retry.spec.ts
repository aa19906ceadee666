import { CodeqError } from '@codeq/proto';
import { backoffMs, DEFAULT_RETRY, resolveRetry, withRetry } from './retry.js';

const fast = { ...DEFAULT_RETRY, initialMs: 1, maxMs: 5 };

describe('backoffMs', () => {
  it('grows exponentially up to maxMs and removes at most the jitter share', () => {
    const p = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
    expect(backoffMs(p, 1, () => 0)).toBe(100);
    expect(backoffMs(p, 2, () => 0)).toBe(200);
    expect(backoffMs(p, 4, () => 0)).toBe(800);
    expect(backoffMs(p, 10, () => 0)).toBe(1000);
    expect(backoffMs(p, 2, () => 1)).toBe(100);
    for (let i = 0; i < 50; i++) {
      const d = backoffMs(p, 3);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });

  it('resolveRetry(false) makes a single attempt', () => {
    expect(resolveRetry(false).maxAttempts).toBe(1);
    expect(resolveRetry({ maxAttempts: 3 })).toEqual({ ...DEFAULT_RETRY, maxAttempts: 3 });
  });
});

describe(withRetry.name, () => {
  it('retries retryable errors and returns the first success', async () => {
    let calls = 0;
    const out = await withRetry(async () => {
      calls++;
      if (calls < 3) throw new CodeqError('UNAVAILABLE', 'down');
      return 'ok';
    }, fast);
    expect(out).toBe('ok');
    expect(calls).toBe(3);
  });

  it('does not retry non-retryable errors', async () => {
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new CodeqError('VALIDATION_FAILED', 'invalid command');
      }, fast),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: 'invalid command' });
    expect(calls).toBe(1);
  });

  it('gives up after maxAttempts with the last error', async () => {
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new CodeqError('RATE_LIMITED', `busy ${calls}`);
      }, { ...fast, maxAttempts: 4 }),
    ).rejects.toMatchObject({ code: 'RATE_LIMITED', message: 'busy 4' });
    expect(calls).toBe(4);
  });

  it("waits at least a 429's Retry-After", async () => {
    const delays: number[] = [];
    let calls = 0;
    await withRetry(
      async () => {
        if (calls++ === 0) throw new CodeqError('RATE_LIMITED', 'rate limit exceeded', { retryAfterMs: 120 });
        return 1;
      },
      fast,
      { onRetry: (_e, _a, ms) => delays.push(ms) },
    );
    expect(delays).toEqual([120]);
  });

  it('stops when the signal aborts', async () => {
    const ac = new AbortController();
    const p = withRetry(async () => {
      throw new CodeqError('UNAVAILABLE', 'down');
    }, { ...DEFAULT_RETRY, initialMs: 10_000, maxMs: 10_000 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('respects a deadline', async () => {
    const started = Date.now();
    await expect(
      withRetry(async () => {
        throw new CodeqError('UNAVAILABLE', 'down');
      }, { ...DEFAULT_RETRY, initialMs: 40, maxMs: 40 }, { deadline: Date.now() + 100 }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
