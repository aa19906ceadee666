import { CodeqError } from '@codeq/proto';

/** Task states (http-api §4.1). */
export type TaskStatus = 'PENDING' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

/**
 * A task as the server reports it, with two conveniences: `data` (the payload parsed from
 * upstream's JSON text in `payload`) and numeric defaults for fields the server omits when
 * zero (`priority`, `attempts`). `C` is the command: a literal for typed tasks, so a
 * `switch (task.command)` over a union of tasks narrows `task.data`.
 */
export interface Task<P = unknown, C extends string = string> {
  readonly id: string;
  readonly command: C;
  /** Upstream's wire form: the payload as JSON text (e.g. `"{\"a\":1}"`). */
  readonly payload: string;
  /** `payload` parsed as JSON (the text itself when it is not JSON), typed by `Commands`. */
  readonly data: P;
  /**
   * The same value as {@link Task.data}.
   * @deprecated use `data`
   */
  readonly payloadJson: P;
  /** 0–9, higher first. */
  readonly priority: number;
  readonly webhook?: string;
  readonly status: TaskStatus;
  /** `PENDING_LIST`, `DELAYED_ZSET`, `INPROG_SET`, `DLQ_SET` or `NONE`. */
  readonly lastKnownLocation?: string;
  /** Lease holder (token subject) while IN_PROGRESS. */
  readonly workerId?: string;
  /** End of the current lease (RFC 3339, whole seconds, UTC) while IN_PROGRESS. */
  readonly leaseUntil?: string;
  /** Fencing token of the current lease: send it back with heartbeat, nack, abandon and result. */
  readonly leaseId?: string;
  /** Deliveries so far. */
  readonly attempts: number;
  readonly maxAttempts: number;
  /** Failure reason (result error, nack reason on dead-letter, `MAX_ATTEMPTS`, `LEASE_EXPIRED`). */
  readonly error?: string;
  readonly resultKey?: string;
  readonly tenantId?: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** The last failure (nack reason, `LEASE_EXPIRED`, result error, dead-letter reason): in operator listings. */
  readonly lastError?: string;
  /** A producer asked to cancel this IN_PROGRESS task (its worker is told at its next heartbeat). */
  readonly cancelRequested?: boolean;
  /**
   * The current delivery's latest progress (`ctx.progress()` of the worker): a number (0–100 by
   * convention) or an object. Absent when none was reported; a new attempt starts without one.
   * Shown by `GET /tasks/:id` (not by claims or listings).
   */
  readonly progress?: number | Record<string, unknown>;
  /** W3C `traceparent` the task was submitted with (codeQ-TS servers; absent when the producer traced nothing). */
  readonly traceParent?: string;
  /** W3C `tracestate` that came with `traceParent`. */
  readonly traceState?: string;
}

/** One stored line of a task's log (`GET /tasks/:id/logs`). */
export interface TaskLogLine {
  /** Line number within the task, from 1 (only the last 200 lines are kept). */
  readonly n: number;
  /** The delivery that wrote it. */
  readonly attempt: number;
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  /** RFC 3339. */
  readonly at: string;
}

/** A stored result (http-api §4.2). */
export interface ResultRecord<R = Record<string, unknown>> {
  readonly taskId: string;
  /** `CANCELLED` when a producer cancelled the task (operator API). */
  readonly status: 'COMPLETED' | 'FAILED' | 'CANCELLED';
  readonly result?: R;
  readonly error?: string;
  readonly artifacts?: ReadonlyArray<{ readonly name: string; readonly url: string }>;
  readonly completedAt: string;
}

/** `GET /tasks/:id/result`: the result and the task's final state. */
export interface TaskResult<P = unknown, R = Record<string, unknown>> {
  readonly task: Task<P>;
  readonly result: ResultRecord<R>;
}

/** Per-command counts for the caller's tenant (http-api §4.4). */
export interface QueueStats {
  readonly command: string;
  readonly ready: number;
  readonly delayed: number;
  readonly inProgress: number;
  readonly dlq: number;
  /** Claims of the command are paused (operator API; absent on upstream servers). */
  readonly paused?: boolean;
}

/** Answer of `POST /admin/tasks/cleanup`. */
export interface CleanupOutcome {
  readonly before: string;
  readonly deleted: number;
  readonly limit: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (o: Record<string, unknown>, k: string): string | undefined => {
  const v = o[k];
  return typeof v === 'string' ? v : undefined;
};
const num = (o: Record<string, unknown>, k: string): number => {
  const v = o[k];
  return typeof v === 'number' ? v : 0;
};

function bad(what: string): CodeqError {
  return new CodeqError('INTERNAL', `unexpected answer from the server: ${what}`);
}

/** `payloadJson` of a task: the JSON text parsed, or the text itself when it is not JSON. */
export function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Builds a typed Task from the server's JSON; keeps any extra fields a newer server adds. */
export function parseTask<P = unknown>(raw: unknown): Task<P> {
  if (!isObject(raw) || typeof raw['id'] !== 'string' || typeof raw['command'] !== 'string') throw bad('not a task');
  const payload = typeof raw['payload'] === 'string' ? raw['payload'] : JSON.stringify(raw['payload'] ?? null);
  let payloadJson: unknown;
  try {
    payloadJson = JSON.parse(payload);
  } catch {
    payloadJson = payload;
  }
  const out: Record<string, unknown> = { ...raw };
  out['payload'] = payload;
  out['data'] = payloadJson;
  out['payloadJson'] = payloadJson;
  out['priority'] = num(raw, 'priority');
  out['attempts'] = num(raw, 'attempts');
  out['maxAttempts'] = num(raw, 'maxAttempts');
  out['status'] = str(raw, 'status') ?? 'PENDING';
  out['createdAt'] = str(raw, 'createdAt') ?? '';
  out['updatedAt'] = str(raw, 'updatedAt') ?? '';
  return out as unknown as Task<P>;
}

/**
 * The fields of a task as the gRPC streams carry it (the worker stream's `Task`, the producer
 * stream's `StoredTask`): empty strings and zeros mean "not set".
 */
export interface WireTask {
  readonly id: string;
  readonly command: string;
  readonly payload: Buffer;
  readonly priority: number;
  readonly status: string;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly webhook: string;
  readonly workerId: string;
  readonly leaseUntil: string;
  readonly leaseId: string;
  readonly tenantId: string;
  readonly lastKnownLocation?: string;
  readonly error?: string;
  readonly resultKey?: string;
  readonly cancelRequested?: boolean;
  readonly traceParent?: string;
  readonly traceState?: string;
}

/**
 * A stream's task as the SDK's {@link Task} (the shape `GET /tasks/:id` answers): `status` and
 * `lastKnownLocation` default to the given ones, optional fields are set only when not empty.
 * One fixed-shape literal: this runs once per pushed or created task.
 */
export function taskFromWire(t: WireTask, createdAt: string, updatedAt: string, defaults: { status: TaskStatus; lastKnownLocation?: string }): Task {
  const payload = t.payload.toString('utf8');
  const data = parsePayload(payload);
  const task: { -readonly [K in keyof Task]: Task[K] } = {
    id: t.id,
    command: t.command,
    payload,
    data,
    payloadJson: data,
    priority: t.priority,
    status: (t.status || defaults.status) as TaskStatus,
    attempts: t.attempts,
    maxAttempts: t.maxAttempts,
    createdAt,
    updatedAt,
  };
  const location = t.lastKnownLocation || defaults.lastKnownLocation;
  if (location) task.lastKnownLocation = location;
  if (t.webhook) task.webhook = t.webhook;
  if (t.workerId) task.workerId = t.workerId;
  if (t.leaseUntil) task.leaseUntil = t.leaseUntil;
  if (t.leaseId) task.leaseId = t.leaseId;
  if (t.error) task.error = t.error;
  if (t.resultKey) task.resultKey = t.resultKey;
  if (t.tenantId) task.tenantId = t.tenantId;
  if (t.cancelRequested) task.cancelRequested = true;
  if (t.traceParent) task.traceParent = t.traceParent;
  if (t.traceState) task.traceState = t.traceState;
  return task;
}

/** Builds a typed ResultRecord from the server's JSON. */
export function parseResult<R = Record<string, unknown>>(raw: unknown): ResultRecord<R> {
  if (!isObject(raw) || typeof raw['taskId'] !== 'string') throw bad('not a result record');
  return raw as unknown as ResultRecord<R>;
}
