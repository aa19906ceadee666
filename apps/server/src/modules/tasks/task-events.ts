/**
 * In-process events about finished tasks. Outbound integrations (result webhooks) subscribe here,
 * so they stay off the request path and out of the task services.
 */
import { Injectable } from '@nestjs/common';
import type { ResultRecord, TaskRecord } from '../../domain/task.js';

export type TaskFinishedListener = (task: TaskRecord, result: ResultRecord) => void;
export type TaskReadyListener = (task: TaskRecord) => void;

@Injectable()
export class TaskEvents {
  private readonly finished: TaskFinishedListener[] = [];
  private readonly created: TaskReadyListener[] = [];
  private readonly stored: TaskReadyListener[] = [];
  /** Any new task was stored (ready or scheduled; not an idempotent replay). Keep listeners O(1). */
  onCreated(l: TaskReadyListener): void {
    this.stored.push(l);
  }
  emitCreated(task: TaskRecord): void {
    for (const l of this.stored) {
      try {
        l(task);
      } catch {
        /* a listener must not break the queue */
      }
    }
  }
  /** A new task was stored and is immediately claimable (not scheduled, not an idempotent replay). */
  onCreatedReady(l: TaskReadyListener): void {
    this.created.push(l);
  }
  emitCreatedReady(task: TaskRecord): void {
    for (const l of this.created) {
      try {
        l(task);
      } catch {
        /* a listener must not break the queue */
      }
    }
  }
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
