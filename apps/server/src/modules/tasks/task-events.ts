/**
 * In-process events about finished tasks. Outbound integrations (result webhooks) subscribe here,
 * so they stay off the request path and out of the task services.
 */
import { Injectable } from '@nestjs/common';
import type { ResultRecord, TaskRecord } from '../../domain/task.js';

export type TaskFinishedListener = (task: TaskRecord, result: ResultRecord) => void;

@Injectable()
export class TaskEvents {
  private readonly finished: TaskFinishedListener[] = [];
  onFinished(l: TaskFinishedListener): void {
    this.finished.push(l);
  }
  /** Called after the finishing write is committed. Listener errors never reach the caller. */
  emitFinished(task: TaskRecord, result: ResultRecord): void {
    for (const l of this.finished) {
      try {
        l(task, result);
      } catch {
        /* a listener must not break the queue */
      }
    }
  }
}
