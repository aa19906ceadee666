/**
 * Outcomes a handler can signal by throwing. Anything else thrown is a transient failure: the task
 * is nacked (retried after the server's backoff) with the error message as reason.
 */

/** Thrown by `ctx.fail()` (or by the handler): record a FAILED result, no retry. */
export class PermanentFailure extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PermanentFailure';
  }
}

/** Thrown by `ctx.retry()`: nack with an explicit delay (and reason). */
export class RetryTask extends Error {
  readonly delaySeconds: number | undefined;
  constructor(message = 'retry requested', delaySeconds?: number) {
    super(message);
    this.name = 'RetryTask';
    this.delaySeconds = delaySeconds;
  }
}

/** The abort reason of `ctx.signal` when the lease is lost (expired, taken over, task gone). */
export class LeaseLostError extends Error {
  readonly taskId: string;
  constructor(taskId: string, reason: string, options?: ErrorOptions) {
    super(`lease lost for task ${taskId}: ${reason}`, options);
    this.name = 'LeaseLostError';
    this.taskId = taskId;
  }
}

/** The abort reason of `ctx.signal` when the worker stops and the drain deadline has passed. */
export class WorkerStoppedError extends Error {
  constructor() {
    super('worker stopped before the handler finished');
    this.name = 'WorkerStoppedError';
  }
}

/**
 * The abort reason of `ctx.signal` when a producer cancelled the task (the server answered a
 * heartbeat or the result with 409 `CANCELLED`). The worker records nothing more for the task:
 * the server has already ended it `CANCELLED`, and it is not retried. The same class as the
 * producer SDK's (which `handle.result()` throws), so `instanceof` works with either import.
 */
export { TaskCancelledError } from '@codeq/sdk-producer';

/**
 * The abort reason of `ctx.signal` when the handler ran longer than `handlerTimeoutMs`. The task
 * is nacked (redelivered after the nack delay) without waiting for the handler to settle.
 */
export class HandlerTimeoutError extends Error {
  readonly taskId: string;
  readonly timeoutMs: number;
  constructor(taskId: string, timeoutMs: number) {
    super(`handler of task ${taskId} did not finish within ${timeoutMs} ms`);
    this.name = 'HandlerTimeoutError';
    this.taskId = taskId;
    this.timeoutMs = timeoutMs;
  }
}
