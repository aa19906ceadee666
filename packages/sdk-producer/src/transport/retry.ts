import { abortReason, isAbortError, isRetryable } from './errors.js';
import { log, type Logger } from './logger.js';
import type { CodeqError } from '@codeq/proto';

/** When and how often a retryable failure (network error, 429, 502/503/504) is tried again. */
export interface RetryPolicy {
  /** Attempts in total, the first included. 1 disables retries. @default 10 */
  maxAttempts: number;
  /** Delay before the second attempt. @default 100 */
  initialMs: number;
  /** Upper bound of one delay. @default 5000 */
  maxMs: number;
  /** Growth of the delay per attempt. @default 2 */
  factor: number;
  /** Random share removed from each delay (0 = none, 1 = full jitter). @default 0.5 */
  jitter: number;
}

/** Default policy: about 20 s of retries, enough to ride out a server restart. */
export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({ maxAttempts: 10, initialMs: 100, maxMs: 5000, factor: 2, jitter: 0.5 });

/** The policy for `retry: false` (a single attempt). */
export const NO_RETRY: Readonly<RetryPolicy> = Object.freeze({ ...DEFAULT_RETRY, maxAttempts: 1 });

/** Completes a partial policy (or `false`) with the defaults. */
export function resolveRetry(p: Partial<RetryPolicy> | false | undefined): RetryPolicy {
  if (p === false) return { ...NO_RETRY };
  return { ...DEFAULT_RETRY, ...(p ?? {}) };
}

/** Exponential backoff with jitter for the `attempt`-th retry (1-based). */
export function backoffMs(p: Pick<RetryPolicy, 'initialMs' | 'maxMs' | 'factor' | 'jitter'>, attempt: number, random = Math.random): number {
  const base = Math.min(p.maxMs, p.initialMs * p.factor ** Math.max(0, attempt - 1));
  const j = Math.min(1, Math.max(0, p.jitter));
  return Math.round(base * (1 - j * random()));
}

/** setTimeout as a promise; rejects with the signal's reason when aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal ? abortReason(signal) : new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Options of one retried operation. */
export interface RetryCall {
  signal?: AbortSignal;
  logger?: Logger;
  /** Name used in log lines. */
  op?: string;
  /** Stop retrying after this instant (ms since epoch); the last error is thrown. */
  deadline?: number;
  /** Called before each wait. */
  onRetry?: (err: CodeqError, attempt: number, delayMs: number) => void;
}

/**
 * Runs `op` until it succeeds, throws a non-retryable error, or the policy is exhausted.
 * The caller fixes idempotency keys / lease ids *before* calling, so every attempt is the same
 * request (conventions §8). A 429's `Retry-After` is honoured as a lower bound of the delay.
 */
export async function withRetry<T>(op: (attempt: number) => Promise<T>, policy: RetryPolicy, call: RetryCall = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(attempt);
    } catch (raw) {
      if (isAbortError(raw) || call.signal?.aborted) throw raw;
      if (!isRetryable(raw) || attempt >= policy.maxAttempts) throw raw;
      const err = raw as CodeqError;
      if (err.details['closed'] === true) throw err; // the transport was closed: no later attempt can work
      const retryAfter = typeof err.details['retryAfterMs'] === 'number' ? err.details['retryAfterMs'] : 0;
      let delay = Math.max(backoffMs(policy, attempt), Math.min(retryAfter, 60_000));
      if (call.deadline !== undefined) {
        const left = call.deadline - Date.now();
        if (left <= 0) throw raw;
        delay = Math.min(delay, left);
      }
      log(call.logger, 'debug', 'codeq: retrying', { op: call.op, attempt, delayMs: delay, code: err.code, error: err.message });
      call.onRetry?.(err, attempt, delay);
      await sleep(delay, call.signal);
    }
  }
}
