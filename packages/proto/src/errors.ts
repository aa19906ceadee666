/**
 * The one error catalogue of codeQ: the server answers with it, the SDKs decide retries with it,
 * and the CLI picks exit codes from it. Codes are SCREAMING_SNAKE and never reused.
 *
 * The HTTP body keeps upstream's shape `{"error": "<message>"}` and adds `code` (and `requestId`).
 * gRPC statuses are numbers (the @grpc/grpc-js `status` enum values) so this file has no runtime
 * dependency and can be imported by browsers and the CLI alike.
 */

/** gRPC status codes used below (values of `@grpc/grpc-js` `status`). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** How one error code maps onto each transport. */
export interface ErrorSpec {
  /** HTTP status code the server answers with. */
  readonly http: number;
  /** gRPC status code the streams end with. */
  readonly grpc: number;
  /** Whether a client may retry the same call (with the same idempotency key / lease id). */
  readonly retryable: boolean;
  /** Process exit code used by the `codeq` CLI. */
  readonly exit: number;
  /** Default human message. */
  readonly summary: string;
}

export const ERRORS = {
  VALIDATION_FAILED: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, retryable: false, exit: 2, summary: 'invalid body' },
  UNAUTHENTICATED: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED, retryable: false, exit: 3, summary: 'invalid token' },
  FORBIDDEN: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED, retryable: false, exit: 3, summary: 'forbidden' },
  NOT_OWNER: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED, retryable: false, exit: 5, summary: 'not-owner' },
  TASK_NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND, retryable: false, exit: 4, summary: 'task not found' },
  RESULT_NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND, retryable: false, exit: 4, summary: 'result not found' },
  NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND, retryable: false, exit: 4, summary: 'not found' },
  NOT_IN_PROGRESS: { http: 409, grpc: GrpcStatus.FAILED_PRECONDITION, retryable: false, exit: 5, summary: 'not-in-progress' },
  LEASE_NOT_HELD: { http: 409, grpc: GrpcStatus.FAILED_PRECONDITION, retryable: false, exit: 5, summary: 'lease-mismatch' },
  CANCELLED: { http: 409, grpc: GrpcStatus.FAILED_PRECONDITION, retryable: false, exit: 5, summary: 'cancelled' },
  TASK_FINISHED: { http: 409, grpc: GrpcStatus.FAILED_PRECONDITION, retryable: false, exit: 5, summary: 'task already finished' },
  PAYLOAD_TOO_LARGE: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED, retryable: false, exit: 2, summary: 'request body too large' },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, grpc: GrpcStatus.INVALID_ARGUMENT, retryable: false, exit: 2, summary: 'unsupported media type' },
  UNPROCESSABLE: { http: 422, grpc: GrpcStatus.INVALID_ARGUMENT, retryable: false, exit: 2, summary: 'invalid field' },
  RATE_LIMITED: { http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED, retryable: true, exit: 6, summary: 'rate limit exceeded' },
  UNAVAILABLE: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retryable: true, exit: 7, summary: 'service unavailable' },
  INTERNAL: { http: 500, grpc: GrpcStatus.INTERNAL, retryable: false, exit: 1, summary: 'internal error' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

const BRAND = Symbol.for('codeq.error'); // survives duplicated package copies

/** The error type thrown by codeQ's services and rebuilt by the SDKs from HTTP/gRPC answers. */
export class CodeqError extends Error {
  readonly [BRAND] = true;
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: ErrorCode, message?: string, details: Readonly<Record<string, unknown>> = {}, options?: ErrorOptions) {
    super(message ?? ERRORS[code].summary, options);
    this.name = 'CodeqError';
    this.code = code;
    this.details = details;
  }
  /** True for any CodeqError, even one created by another copy of this package. */
  static is(e: unknown): e is CodeqError {
    return typeof e === 'object' && e !== null && BRAND in e;
  }
  /** The transport mapping of this error's code. */
  get spec(): ErrorSpec {
    return ERRORS[this.code];
  }
}

/** True when `code` is one of the catalogue's codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, code);
}

/** Best-effort code for an HTTP status when the body carried no `code` (e.g. an upstream server). */
export function codeForHttpStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return 'VALIDATION_FAILED';
    case 401: return 'UNAUTHENTICATED';
    case 403: return 'FORBIDDEN';
    case 404: return 'NOT_FOUND';
    case 409: return 'NOT_IN_PROGRESS';
    case 413: return 'PAYLOAD_TOO_LARGE';
    case 415: return 'UNSUPPORTED_MEDIA_TYPE';
    case 422: return 'UNPROCESSABLE';
    case 429: return 'RATE_LIMITED';
    case 502:
    case 503:
    case 504: return 'UNAVAILABLE';
    default: return status >= 500 ? 'INTERNAL' : 'VALIDATION_FAILED';
  }
}

/** Rebuild a CodeqError from an HTTP error answer (`{"error": "...", "code"?: "..."}`). */
export function decodeHttpError(status: number, body: unknown): CodeqError {
  const obj = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const message = typeof obj['error'] === 'string' ? obj['error'] : `HTTP ${status}`;
  const code = isErrorCode(obj['code']) ? obj['code'] : codeForHttpStatus(status);
  const { error: _e, code: _c, ...details } = obj;
  return new CodeqError(code, message, { ...details, httpStatus: status });
}
