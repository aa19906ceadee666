/**
 * `submit()`'s answer: the stored task (every field `submit()` returned before handles existed)
 * plus methods to follow it to its end.
 */
import { TaskCancelledError, TaskFailedError } from './errors.js';
import type { CallOptions } from './transport/transport.js';
import type { Task, TaskResult } from './transport/types.js';
import type { PayloadOf, ResultOf, TaskOf } from './commands.js';

/** Options of {@link TaskHandleMethods.result} and {@link TaskHandleMethods.wait}. */
export interface WaitOptions {
  /** Give up after this long (rejects with `RESULT_NOT_FOUND`, `details.timedOut`). @default 60000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What a handle needs from its producer. */
export interface HandleOps {
  get(id: string, opts?: CallOptions): Promise<Task>;
  waitForResult(id: string, opts?: WaitOptions): Promise<TaskResult>;
  cancel(id: string, opts?: CallOptions): Promise<Task>;
}

/** The methods of a {@link TaskHandle}. */
export interface TaskHandleMethods<C extends string, R> {
  /** The task as the server stored it at submit time (the handle's own fields are the same values). */
  readonly task: TaskOf<C>;
  /**
   * Waits for the task to end and resolves its result (the handler's return value). Throws
   * {@link TaskFailedError} when it ended FAILED (including dead-lettered), {@link TaskCancelledError}
   * when it was cancelled, and `RESULT_NOT_FOUND` (`details.timedOut`) after `timeoutMs`.
   */
  result(opts?: WaitOptions): Promise<R>;
  /** Waits for the task to end and resolves the raw result record and final task (never throws on FAILED/CANCELLED). */
  wait(opts?: WaitOptions): Promise<TaskResult<PayloadOf<C>, R>>;
  /** Reads the task's current state. */
  get(opts?: CallOptions): Promise<TaskOf<C>>;
  /** Cancels the task (see `Producer.cancel`). */
  cancel(opts?: CallOptions): Promise<TaskOf<C>>;
}

/**
 * A submitted task: its stored fields (`id`, `status`, `data`, `maxAttempts` …) and methods
 * (`result()`, `wait()`, `get()`, `cancel()`). The methods are not own properties, so
 * `JSON.stringify(handle)` and `{ ...handle }` give the plain task.
 */
export type TaskHandle<C extends string = string, R = ResultOf<C>> = TaskOf<C> & TaskHandleMethods<C, R>;

class Handle {
  readonly #task: Task;
  readonly #ops: HandleOps;

  constructor(task: Task, ops: HandleOps) {
    Object.assign(this, task);
    this.#task = task;
    this.#ops = ops;
  }

  get task(): Task {
    return this.#task;
  }

  wait(opts?: WaitOptions): Promise<TaskResult> {
    return this.#ops.waitForResult(this.#task.id, opts);
  }

  async result(opts?: WaitOptions): Promise<unknown> {
    const { task, result } = await this.wait(opts);
    switch (result.status) {
      case 'COMPLETED':
        return result.result ?? {};
      case 'FAILED':
        throw new TaskFailedError(task.id, result.error ?? task.error ?? '', { task, record: result });
      case 'CANCELLED':
        throw new TaskCancelledError(task.id, { task, record: result });
    }
  }

  get(opts?: CallOptions): Promise<Task> {
    return this.#ops.get(this.#task.id, opts);
  }

  cancel(opts?: CallOptions): Promise<Task> {
    return this.#ops.cancel(this.#task.id, opts);
  }
}

/** Wraps a stored task into a handle. */
export function toHandle<C extends string>(task: Task, ops: HandleOps): TaskHandle<C> {
  return new Handle(task, ops) as unknown as TaskHandle<C>;
}
