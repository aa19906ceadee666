/** (d) The error catalogue is complete for every transport and survives an HTTP round trip. */
import { CodeqError, ERRORS, GrpcStatus, decodeHttpError, isErrorCode, type ErrorCode } from './errors.js';

const grpcValues = new Set<number>(Object.values(GrpcStatus));

describe('error catalogue', () => {
  it.each(Object.keys(ERRORS) as ErrorCode[])('%s has http, grpc, retryable and exit', (code) => {
    const spec = ERRORS[code];
    expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
    expect(Number.isInteger(spec.http) && spec.http >= 400 && spec.http <= 599).toBe(true);
    expect(grpcValues.has(spec.grpc)).toBe(true);
    expect(spec.grpc).not.toBe(GrpcStatus.OK);
    expect(typeof spec.retryable).toBe('boolean');
    expect(Number.isInteger(spec.exit) && spec.exit > 0 && spec.exit < 126).toBe(true);
    expect(spec.summary.length).toBeGreaterThan(0);
    expect(isErrorCode(code)).toBe(true);
  });

  it('decodeHttpError maps {error:"not-owner", code:"NOT_OWNER"} back', () => {
    const e = decodeHttpError(403, { error: 'not-owner', code: 'NOT_OWNER', requestId: 'r-1' });
    expect(e).toBeInstanceOf(CodeqError);
    expect(CodeqError.is(e)).toBe(true);
    expect(e.code).toBe('NOT_OWNER');
    expect(e.message).toBe('not-owner');
    expect(e.spec).toBe(ERRORS.NOT_OWNER);
    expect(e.details).toEqual({ requestId: 'r-1', httpStatus: 403 });
  });

  it('decodeHttpError falls back on the status when the body has no known code (upstream server)', () => {
    expect(decodeHttpError(404, { error: 'task not found' }).code).toBe('NOT_FOUND');
    expect(decodeHttpError(503, 'gateway says no').code).toBe('UNAVAILABLE');
    expect(decodeHttpError(409, { error: 'x', code: 'NOPE' }).code).toBe('NOT_IN_PROGRESS');
  });
});

describe('docs/errors.md', () => {
  it('lists every code of the catalogue with its HTTP status', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\| ${spec.http} \\|`));
    }
  });
});
