import { Metadata } from '@grpc/grpc-js';
import { CodeqError, ERRORS, GrpcStatus, type ErrorCode } from '@codeq/proto';
import { decodeAckError, decodeGrpcStatus, decodeServerError, normalizeGrpcAddress } from './grpc.js';
import { isConnectionError, isLeaseLost, isRetryable } from './errors.js';

const T = 'grpc://127.0.0.1:9092';

describe(normalizeGrpcAddress.name, () => {
  it('accepts host:port, grpc:// and :port', () => {
    expect(normalizeGrpcAddress('localhost:9092')).toBe('localhost:9092');
    expect(normalizeGrpcAddress(' grpc://codeq.internal:9091/ ')).toBe('codeq.internal:9091');
    expect(normalizeGrpcAddress(':9092')).toBe('localhost:9092');
    expect(normalizeGrpcAddress('[::1]:9092')).toBe('[::1]:9092');
  });
  it('rejects values without a port with VALIDATION_FAILED', () => {
    for (const bad of ['localhost', 'http://localhost:8080', '', 'a b:1']) {
      expect(() => normalizeGrpcAddress(bad)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    }
  });
});

describe(decodeGrpcStatus.name, () => {
  it('maps auth statuses onto the catalogue (not retryable)', () => {
    const e = decodeGrpcStatus({ code: GrpcStatus.UNAUTHENTICATED, details: 'auth failed: invalid token' }, T);
    expect(e).toMatchObject({ code: 'UNAUTHENTICATED', message: 'auth failed: invalid token', details: { grpcStatus: 16 } });
    expect(isRetryable(e)).toBe(false);
    expect(decodeGrpcStatus({ code: GrpcStatus.PERMISSION_DENIED, details: 'invalid tenant claims' }, T).code).toBe('FORBIDDEN');
  });
  it('turns transport failures into retryable UNAVAILABLE with details.network, like HTTP', () => {
    const refused = decodeGrpcStatus({ code: GrpcStatus.UNAVAILABLE, details: 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:9092' }, T);
    expect(refused).toMatchObject({ code: 'UNAVAILABLE', message: `cannot reach the codeQ server at ${T}: connection refused` });
    expect(isConnectionError(refused)).toBe(true);
    expect(isRetryable(refused)).toBe(true);
    // grpc-js reports some dropped connections as INTERNAL: still a transport failure.
    expect(decodeGrpcStatus({ code: GrpcStatus.INTERNAL, details: 'Received RST_STREAM with code 2 triggered by internal client error' }, T)).toMatchObject({ code: 'UNAVAILABLE', details: { network: true } });
    expect(decodeGrpcStatus({ code: GrpcStatus.UNAVAILABLE, details: 'server shutting down' }, T)).toMatchObject({ code: 'UNAVAILABLE', message: 'server shutting down' });
    expect(decodeGrpcStatus({ code: GrpcStatus.DEADLINE_EXCEEDED, details: 'no Hello within 10s' }, T).code).toBe('UNAVAILABLE');
    expect(decodeGrpcStatus({ code: GrpcStatus.OK, details: 'OK' }, T).code).toBe('UNAVAILABLE');
  });
  it('prefers the codeq-error-code trailer', () => {
    const md = new Metadata();
    md.set('codeq-error-code', 'RATE_LIMITED');
    expect(decodeGrpcStatus({ code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'rate limit exceeded', metadata: md }, T).code).toBe('RATE_LIMITED');
    expect(decodeGrpcStatus({ code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'Received message larger than max (5000000 vs 4194304)' }, T).code).toBe('PAYLOAD_TOO_LARGE');
  });
  it('round-trips every catalogue code through the trailer', () => {
    for (const code of Object.keys(ERRORS) as ErrorCode[]) {
      const md = new Metadata();
      md.set('codeq-error-code', code);
      const e = decodeGrpcStatus({ code: ERRORS[code].grpc, details: 'x', metadata: md }, T);
      expect({ code, decoded: e.code, is: CodeqError.is(e) }).toEqual({ code, decoded: code, is: true });
    }
  });
});

describe(decodeAckError.name, () => {
  it('uses our error_code, else upstream texts', () => {
    expect(decodeAckError('lease-mismatch', 'LEASE_NOT_HELD')).toMatchObject({ code: 'LEASE_NOT_HELD', message: 'lease-mismatch' });
    const upstream = decodeAckError('not-owner', '');
    expect(upstream.code).toBe('NOT_OWNER');
    expect(isLeaseLost(upstream)).toBe(true);
    expect(decodeAckError('not-in-progress', '').code).toBe('NOT_IN_PROGRESS');
    expect(decodeAckError('task not found', '').code).toBe('TASK_NOT_FOUND');
    expect(decodeAckError('command is required', '').code).toBe('VALIDATION_FAILED');
    expect(decodeAckError('pebble: not leader (try http://n2)', '').code).toBe('UNAVAILABLE');
  });
  it('decodes ServerError code names', () => {
    expect(decodeServerError('PermissionDenied', 'event type not allowed')).toMatchObject({ code: 'FORBIDDEN', message: 'event type not allowed' });
    expect(decodeServerError('Internal', 'boom').code).toBe('INTERNAL');
    expect(decodeServerError('Whatever', '').code).toBe('INTERNAL');
  });
});
