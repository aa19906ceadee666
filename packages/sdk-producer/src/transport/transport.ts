import type { CodeqError } from '@codeq/proto';
import type { CleanupOutcome, QueueStats, ResultRecord, Task, TaskLogLine, TaskResult } from './types.js';

/** Per-call options every transport understands. */
export interface CallOptions {
  /** Aborts the call; the promise rejects with the signal's reason (an `AbortError`). */
  signal?: AbortSignal;
  /** Overrides the transport's request timeout for this call. */
  timeoutMs?: number;
}

/** One task to create (http-api §6.1). `runAt` is RFC 3339. */
export interface CreateTaskInput {
  command: string;
  payload: unknown;
  priority?: number;
  webhook?: string;
  maxAttempts?: number;
  idempotencyKey?: string;
  runAt?: string;
  delaySeconds?: number;
  /**
   * W3C trace context of the submission (set by the producer's `codeq.submit` span): sent as the
   * `traceparent`/`tracestate` headers (HTTP create), per-item body fields (HTTP batch), or
   * `CreateTask.trace_parent`/`trace_state` (gRPC).
   */
  traceParent?: string;
  traceState?: string;
}

/** Outcome of one item of a batch create, in input order. */
export type BatchCreateOutcome = { readonly task: Task; readonly error?: undefined } | { readonly task?: undefined; readonly error: CodeqError };

/** `POST /tasks/claim` body. */
export interface ClaimInput {
  commands: readonly string[];
  leaseSeconds?: number;
  /** Long-poll up to this many seconds (server caps at 30). */
  waitSeconds?: number;
}

/** `POST /tasks/:id/heartbeat` body. */
export interface HeartbeatInput {
  extendSeconds?: number;
  leaseId?: string;
}

/** `POST /tasks/:id/progress` body: a finite number (0–100 by convention) or a JSON object (≤ 4 KiB). */
export interface ProgressInput {
  progress: number | Record<string, unknown>;
  leaseId?: string;
}

/** One line for `POST /tasks/:id/logs`. */
export interface LogLineInput {
  level?: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  /** RFC 3339; default: when the server receives it. */
  at?: string;
}

/** `POST /tasks/:id/logs` body: 1..100 lines (longer than 2 KiB are truncated by the server). */
export interface AppendLogsInput {
  lines: readonly LogLineInput[];
  leaseId?: string;
}

/** `GET /tasks/:id/logs` query. */
export interface LogsQuery {
  /** Only lines numbered after this one. */
  after?: number;
  /** 1..200. @default 200 */
  limit?: number;
}

/** `POST /tasks/:id/nack` body. */
export interface NackInput {
  /** ≤ 0 or absent: the server's backoff policy decides. */
  delaySeconds?: number;
  reason?: string;
  leaseId?: string;
}

/** Answer of a nack: requeued with a delay, or dead-lettered. */
export interface NackOutcome {
  readonly status: 'requeued' | 'dlq';
  readonly delaySeconds: number;
}

/** An artifact attached to a result: a URL, or inline base64 content the server stores. */
export interface ArtifactInput {
  name: string;
  url?: string;
  contentBase64?: string;
  contentType?: string;
}

/** `POST /tasks/:id/result` body. */
export interface ResultInput {
  status: 'COMPLETED' | 'FAILED';
  /** Required (an object, `{}` allowed) when COMPLETED. */
  result?: Record<string, unknown>;
  /** Required when FAILED. */
  error?: string;
  artifacts?: ArtifactInput[];
  leaseId?: string;
}

/** `POST /admin/tasks/cleanup` body. */
export interface CleanupInput {
  /** RFC 3339; default now. */
  before?: string;
  limit?: number;
}

/** What every transport has. */
interface TransportBase {
  /** Where the transport connects, for messages (e.g. `http://localhost:8080`). */
  readonly target: string;
  /** Frees connections; later calls fail. */
  close(): Promise<void>;
}

/**
 * The producer's side of codeQ's API: creates, reads and admin calls. `GrpcProducerTransport`
 * (the producer stream, with HTTP for reads) and `HttpTransport` implement it.
 */
export interface ProducerTransport extends TransportBase {
  createTask(input: CreateTaskInput, opts?: CallOptions): Promise<Task>;
  createTasks(inputs: readonly CreateTaskInput[], opts?: CallOptions): Promise<BatchCreateOutcome[]>;
  getTask(id: string, opts?: CallOptions): Promise<Task>;
  /** Rejects with `RESULT_NOT_FOUND` when there is no result (after `waitSeconds`). */
  getResult(id: string, waitSeconds?: number, opts?: CallOptions): Promise<TaskResult>;
  /** The task's stored log lines, oldest first. */
  getLogs?(id: string, query?: LogsQuery, opts?: CallOptions): Promise<TaskLogLine[]>;
  listQueues(opts?: CallOptions): Promise<Record<string, number>>;
  queueStats(command: string, opts?: CallOptions): Promise<QueueStats>;
  cleanup(input?: CleanupInput, opts?: CallOptions): Promise<CleanupOutcome>;
}

/**
 * The worker's side of codeQ's API: claims and everything a lease holder sends.
 * `GrpcWorkerTransport` (the worker stream, `@codeq/sdk-worker`) and `HttpTransport` implement it.
 */
export interface WorkerTransport extends TransportBase {
  /** Resolves `null` when nothing was claimable within `waitSeconds`. */
  claim(input: ClaimInput, opts?: CallOptions): Promise<Task | null>;
  heartbeat(id: string, input: HeartbeatInput, opts?: CallOptions): Promise<{ readonly leaseUntil?: string }>;
  nack(id: string, input: NackInput, opts?: CallOptions): Promise<NackOutcome>;
  abandon(id: string, input?: { leaseId?: string }, opts?: CallOptions): Promise<{ readonly status: string }>;
  submitResult(id: string, input: ResultInput, opts?: CallOptions): Promise<ResultRecord>;
  /** Store the lease holder's progress on the task (issue 17). Optional: older transports lack it. */
  reportProgress?(id: string, input: ProgressInput, opts?: CallOptions): Promise<void>;
  /** Append lines to the task's log (lease holder only). */
  appendLogs?(id: string, input: AppendLogsInput, opts?: CallOptions): Promise<void>;
}

/**
 * All of codeQ's API, independent of the wire: both roles. `HttpTransport` implements it over
 * the REST API; each gRPC stream transport implements its own role only (no transport forwards
 * the other role's calls), and the SDKs' retry, idempotency and lease logic works unchanged on
 * top of either.
 *
 * Every method rejects with a `CodeqError` (our error catalogue code, upstream's message and
 * `details.httpStatus` or equivalent), or with an `AbortError` when `opts.signal` aborted.
 * Transport failures are `UNAVAILABLE` with `details.network === true`.
 */
export interface Transport extends ProducerTransport, WorkerTransport {}
