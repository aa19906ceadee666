import { CodeqError, ERRORS, type ErrorCode } from '@codeq/proto';

export { CodeqError, ERRORS, type ErrorCode };

/** Codes after which a later call with the same lease cannot succeed: the lease is gone. */
export const LEASE_LOST_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'LEASE_NOT_HELD',
  'NOT_OWNER',
  'NOT_IN_PROGRESS',
  'TASK_NOT_FOUND',
  'NOT_FOUND',
]);

/** Node's errno codes that mean "the server is not reachable right now". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

/** The abort reason of `signal` as an Error (an `AbortError` DOMException when none was given). */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new DOMException(typeof r === 'string' ? r : 'This operation was aborted', 'AbortError');
}

/** True when the caller's own signal aborted the call (never retried, never wrapped). */
export function isAbortError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'AbortError';
}

/** True for errors a client may retry with the same idempotency key / lease id. */
export function isRetryable(e: unknown): boolean {
  return CodeqError.is(e) && ERRORS[e.code].retryable;
}

/** True when the error says the lease of a task is gone (lost, expired, taken over, task deleted). */
export function isLeaseLost(e: unknown): boolean {
  return CodeqError.is(e) && LEASE_LOST_CODES.has(e.code);
}

/** True when the error means the server could not be reached at all (no HTTP answer). */
export function isConnectionError(e: unknown): boolean {
  return CodeqError.is(e) && e.details['network'] === true;
}

/** Wraps a socket-level failure as a retryable `UNAVAILABLE` CodeqError. */
export function networkError(cause: unknown, target: string): CodeqError {
  const errno = typeof cause === 'object' && cause !== null ? (cause as { code?: unknown }).code : undefined;
  const code = typeof errno === 'string' ? errno : undefined;
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'host not found'
        : code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET'
          ? 'connection reset'
          : (cause instanceof Error ? cause.message : String(cause)) || 'network error';
  return new CodeqError('UNAVAILABLE', `cannot reach the codeQ server at ${target}: ${why}`, { network: true, errno: code, target }, { cause });
}

/** True for errors thrown by sockets (as opposed to bugs). */
export function isNetworkFailure(e: unknown): boolean {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (NETWORK_CODES.has(code) || code.startsWith('ERR_HTTP') || code.startsWith('UND_ERR'));
}

/** Anything thrown by a transport → CodeqError (abort errors are returned unchanged by callers). */
export function toCodeqError(e: unknown, target = 'server'): CodeqError {
  if (CodeqError.is(e)) return e;
  if (isNetworkFailure(e)) return networkError(e, target);
  const message = e instanceof Error ? e.message : String(e);
  return new CodeqError('INTERNAL', message, {}, { cause: e });
}
