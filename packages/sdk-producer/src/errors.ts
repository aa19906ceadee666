/**
 * How a task ended when it did not complete: `handle.result()` throws these. The worker SDK
 * re-exports {@link TaskCancelledError} (it is also the abort reason of a handler's `ctx.signal`
 * when a producer cancels the task), so `instanceof` works with either import.
 */
import type { ResultRecord, Task } from './transport/types.js';

/** The task ended FAILED (a failed result, dead-lettered after its attempts, or a failed validation). */
export class TaskFailedError extends Error {
  readonly taskId: string;
  /** The failure reason the server stored (the result's `error`). */
  readonly reason: string;
  /** The task's final state, when known. */
  readonly task: Task | undefined;
  /** The stored result record, when known. */
  readonly record: ResultRecord | undefined;
  constructor(taskId: string, reason: string, info: { task?: Task; record?: ResultRecord } = {}, options?: ErrorOptions) {
    super(`task ${taskId} failed: ${reason || 'failed'}`, options);
    this.name = 'TaskFailedError';
    this.taskId = taskId;
    this.reason = reason;
    this.task = info.task;
    this.record = info.record;
  }
}

/**
 * The task was cancelled (by a producer or an operator). Thrown by `handle.result()`; in a
 * worker, the abort reason of `ctx.signal` when the server reports the cancellation.
 */
export class TaskCancelledError extends Error {
  readonly taskId: string;
  /** The task's final state, when known (producer side). */
  readonly task: Task | undefined;
  /** The stored result record (status CANCELLED), when known (producer side). */
  readonly record: ResultRecord | undefined;
  constructor(taskId: string, options?: ErrorOptions & { task?: Task; record?: ResultRecord }) {
    super(`task ${taskId} was cancelled`, options);
    this.name = 'TaskCancelledError';
    this.taskId = taskId;
    this.task = options?.task;
    this.record = options?.record;
  }
}
