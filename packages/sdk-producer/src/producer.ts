import { CodeqError } from '@codeq/proto';
import { Coalescer, type BatchingOptions } from './coalescer.js';
import type { CommandName, PayloadOf, ResultOf, TaskOf } from './commands.js';
import { toHandle, type TaskHandle, type WaitOptions } from './handle.js';
import { newIdempotencyKey } from './keys.js';
import { checkSchemas, formatIssues, validatePayload, type CommandSchemas } from './schemas.js';
import { GrpcProducerTransport } from './transport/grpc-producer-transport.js';
import type { GrpcConnectionOptions } from './transport/grpc.js';
import { HttpTransport } from './transport/http-transport.js';
import { abortReason, isAbortError } from './transport/errors.js';
import type { Logger } from './transport/logger.js';
import { resolveRetry, withRetry, type RetryPolicy } from './transport/retry.js';
import type { BatchCreateOutcome, CallOptions, CreateTaskInput, LogsQuery, ProducerTransport } from './transport/transport.js';
import { endSubmitSpan, startSubmitSpan, tracedSubmit } from './tracing.js';
import type { Task, TaskLogLine, TaskResult } from './transport/types.js';
import { OperatorCalls, type ListFilter, type ProducerAdmin, type TaskPage } from './operator.js';

/** The wire of a producer or worker: the REST API, or the gRPC streams. */
export type TransportKind = 'http' | 'grpc';

/**
 * Where to connect. With `grpcAddress` the SDK uses the gRPC stream (`transport` defaults to
 * `'grpc'`); without it, HTTP. Reads (`get`, `getResult`, `waitForResult`) always use HTTP, so
 * give `baseUrl` as well when you need them. Or pass a ready {@link ProducerTransport}.
 */
export type ProducerTarget =
  | {
      /** Server base URL of the HTTP API, e.g. `http://localhost:8080`. Required for `transport: 'http'` and for reads. */
      baseUrl?: string;
      /** Producer stream address (`PRODUCER_STREAM_ADDR`), e.g. `localhost:9092`. */
      grpcAddress?: string;
      /** Producer bearer token. */
      token: string;
      /** Wire for submissions. @default `'grpc'` when `grpcAddress` is set, else `'http'` */
      transport?: TransportKind;
      /** gRPC channel settings (TLS credentials, keepalive and other channel options). @default plaintext */
      grpc?: Pick<GrpcConnectionOptions, 'credentials' | 'channelOptions'>;
    }
  | {
      /** Use this transport (e.g. a shared HttpTransport or GrpcProducerTransport); `close()` leaves it open. */
      transport: ProducerTransport;
      baseUrl?: string;
      grpcAddress?: string;
      token?: string;
    };

/** Options of {@link createProducer}. */
export type ProducerOptions = ProducerTarget & {
  /** Retry policy for transient failures, or `false` for a single attempt. @default DEFAULT_RETRY (10 attempts, 100 ms → 5 s) */
  retry?: Partial<RetryPolicy> | false;
  /** Per-request timeout (HTTP), or how long a stream ack may take (gRPC). @default 30000 */
  timeoutMs?: number;
  /** Receives debug lines (requests, retries). Silent by default. */
  logger?: Logger;
  /**
   * Coalescing of concurrent `submit()` calls: the submits of one turn of the event loop (or of
   * `lingerMs`) go out as one batch (HTTP `POST /tasks/batch`, gRPC `CreateTaskBatch`); each
   * caller still gets its own task or error, its own idempotency key and its own retries.
   * A lone submit is sent as a single create. `false` sends every submit on its own.
   * @default `{ lingerMs: 0, maxBatch: 100 }` (HTTP) / `{ lingerMs: 0, maxBatch: 500 }` (gRPC)
   */
  batching?: BatchingOptions | false;
  /**
   * Runtime validation of payloads by command with any Standard Schema validator (zod, valibot,
   * arktype …). A payload that fails is rejected with `VALIDATION_FAILED` (`details.issues`)
   * before anything is sent; a passing payload is sent as the schema outputs it (defaults and
   * transforms applied). Commands without a schema are not checked.
   */
  schemas?: CommandSchemas;
};

/** Options of one submission. */
export interface SubmitOptions {
  /** 0–9 (clamped by the server), higher first. @default 0 */
  priority?: number;
  /** Make the task visible after this many seconds. Ignored when `runAt` is set. */
  delaySeconds?: number;
  /** Make the task visible at this instant (`Date` or RFC 3339). */
  runAt?: Date | string;
  /** Deliveries before dead-lettering. @default server's MAX_ATTEMPTS_DEFAULT (5) */
  maxAttempts?: number;
  /** URL that receives the result callback. */
  webhook?: string;
  /**
   * Deduplication key (per tenant). When absent the SDK generates one (UUID) before the first
   * attempt, so a retried request never creates a second task.
   */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** One item of {@link Producer.submitMany}. */
export type SubmitItem<C extends string = string> = { command: C; payload: PayloadOf<C> } & Omit<SubmitOptions, 'signal'>;

/** Checks each element of a `submitMany` array literal against {@link Commands}. */
export type SubmitItems<T extends readonly { command: string }[]> = { [K in keyof T]: T[K] extends { command: infer C extends string } ? SubmitItem<C & CommandName> : never };

/** Outcome of one item of {@link Producer.submitMany}, in input order. */
/** One item of `submitMany()`: a {@link TaskHandle} (the stored task plus `result()`, `wait()`, …) or the item's error. */
export type SubmitManyResult = { readonly ok: true; readonly task: TaskHandle } | { readonly ok: false; readonly error: CodeqError };

export type { WaitOptions };

/** The producer client. Create it with {@link createProducer}. */
export interface Producer {
  /** The transport in use (for low-level calls). */
  readonly transport: ProducerTransport;
  /**
   * Create one task (HTTP `POST /v1/codeq/tasks`, or a `CreateTask` on the producer stream),
   * retrying transient failures with one idempotency key. Resolves a {@link TaskHandle}: the
   * stored task (over gRPC from `CreateAck.task`; an upstream server acknowledges only the id,
   * and then the fields are the submitted values) plus `result()`, `wait()`, `get()`, `cancel()`.
   * With `schemas`, a payload that fails validation rejects with `VALIDATION_FAILED` and nothing is sent.
   */
  submit<C extends CommandName>(command: C, payload: PayloadOf<C>, opts?: SubmitOptions): Promise<TaskHandle<C>>;
  /**
   * Create many tasks (HTTP: `POST /tasks/batch`, 100 per request; gRPC: `CreateTaskBatch`
   * messages). Every item gets an idempotency key, so retried batches never duplicate.
   */
  submitMany<const T extends readonly SubmitItem[]>(items: T & SubmitItems<T>, opts?: { signal?: AbortSignal }): Promise<SubmitManyResult[]>;
  /** Read a task. */
  get<C extends string = string>(id: string, opts?: CallOptions): Promise<TaskOf<C>>;
  /**
   * The task's log lines (`ctx.log()` / `ctx.logger` of its workers), oldest first; the server keeps
   * the last 200 lines. Page with `after` (the last `n` seen). `get(id).progress` has its progress.
   */
  logs(id: string, query?: LogsQuery & CallOptions): Promise<TaskLogLine[]>;
  /** Read a task's result now; rejects with `RESULT_NOT_FOUND` when there is none yet. */
  getResult(id: string, opts?: CallOptions): Promise<TaskResult>;
  /** Long-poll until the task has a result (COMPLETED or FAILED, incl. dead-lettered) or the timeout. */
  waitForResult<C extends string = string>(id: string, opts?: WaitOptions): Promise<TaskResult<PayloadOf<C>, ResultOf<C>>>;
  /**
   * Every task of the tenant matching `filter`, newest first, following pages (`limit` = page size).
   * `for await (const t of producer.list({ status: 'FAILED', command: 'email.send' })) …`
   */
  list(filter?: ListFilter): AsyncIterable<Task>;
  /** One page of the listing and the cursor of the next one (null on the last page). */
  listPage(filter?: ListFilter): Promise<TaskPage>;
  /**
   * Cancel a task: PENDING/DELAYED → CANCELLED now; IN_PROGRESS → `cancelRequested` (its worker is
   * told at its next heartbeat and the task ends CANCELLED). Idempotent; a finished task rejects
   * with `TASK_FINISHED`.
   */
  cancel(id: string, opts?: CallOptions): Promise<Task>;
  /** Admin calls: pause/resume commands, the commands overview, dead letters, schedules (admin token). */
  readonly admin: ProducerAdmin;
  /** Release connections. */
  close(): Promise<void>;
}

/** Largest batch the server accepts. */
export const MAX_BATCH = 100;

function toInput(command: string, payload: unknown, o: Omit<SubmitOptions, 'signal'>, key: string): CreateTaskInput {
  const runAt = o.runAt instanceof Date ? o.runAt.toISOString() : o.runAt;
  const input: CreateTaskInput = { command, payload, idempotencyKey: key };
  if (o.priority !== undefined) input.priority = o.priority;
  if (o.delaySeconds !== undefined) input.delaySeconds = o.delaySeconds;
  if (runAt !== undefined) input.runAt = runAt;
  if (o.maxAttempts !== undefined) input.maxAttempts = o.maxAttempts;
  if (o.webhook !== undefined) input.webhook = o.webhook;
  return input;
}

/** The transport for `opts`, and whether the producer owns (closes) it. */
function openTransport(opts: ProducerOptions): { transport: ProducerTransport; owned: boolean } {
  if (typeof opts.transport === 'object') return { transport: opts.transport, owned: false };
  const kind: TransportKind = opts.transport ?? (opts.grpcAddress ? 'grpc' : 'http');
  const common = { token: opts.token, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.logger ? { logger: opts.logger } : {}) };
  if (kind === 'grpc') {
    if (!opts.grpcAddress) throw new CodeqError('VALIDATION_FAILED', "grpcAddress is required with transport: 'grpc' (the producer stream, e.g. localhost:9092)");
    return { transport: new GrpcProducerTransport({ ...common, address: opts.grpcAddress, ...(opts.baseUrl !== undefined ? { baseUrl: opts.baseUrl } : {}), ...opts.grpc }), owned: true };
  }
  if (opts.baseUrl === undefined) throw new CodeqError('VALIDATION_FAILED', 'baseUrl is required (or grpcAddress for the gRPC transport)');
  return { transport: new HttpTransport({ ...common, baseUrl: opts.baseUrl }), owned: true };
}

class DefaultProducer implements Producer {
  readonly transport: ProducerTransport;
  private readonly retry: RetryPolicy;
  private readonly logger: Logger | undefined;
  private readonly ownsTransport: boolean;
  private readonly coalescer: Coalescer<CreateTaskInput, Task> | undefined;
  private readonly ops: OperatorCalls;
  private readonly schemas: CommandSchemas | undefined;
  readonly admin: ProducerAdmin;

  constructor(opts: ProducerOptions) {
    checkSchemas(opts.schemas);
    this.schemas = opts.schemas;
    const { transport, owned } = openTransport(opts);
    this.ownsTransport = owned;
    this.transport = transport;
    this.retry = resolveRetry(opts.retry);
    this.logger = opts.logger;
    if (opts.batching !== false) {
      const b = opts.batching ?? {};
      const cap = transport instanceof GrpcProducerTransport ? 500 : MAX_BATCH;
      const t = transport;
      this.coalescer = new Coalescer<CreateTaskInput, Task>({
        sendOne: (input) => t.createTask(input),
        sendMany: async (inputs) => (await t.createTasks(inputs)).map((r) => (r.task ? { value: r.task } : { error: r.error })),
        lingerMs: Math.max(0, b.lingerMs ?? 0),
        maxBatch: Math.max(1, Math.min(Math.floor(b.maxBatch ?? cap), cap)),
        retry: this.retry,
        logger: this.logger,
        op: 'submit',
      });
    }
    this.ops = new OperatorCalls(transport, (op, fn, signal) => this.call(op, fn, signal));
    this.admin = this.ops.admin;
  }

  list(filter?: ListFilter): AsyncIterable<Task> {
    return this.ops.list(filter);
  }

  listPage(filter?: ListFilter): Promise<TaskPage> {
    return this.ops.listPage(filter);
  }

  cancel(id: string, opts?: CallOptions): Promise<Task> {
    return this.ops.cancel(id, opts);
  }

  private call<T>(op: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withRetry(fn, this.retry, { op, logger: this.logger, ...(signal ? { signal } : {}) });
  }

  /** The payload to send for `command`: validated (and transformed) by its schema, if any. */
  private async checked(command: string, payload: unknown): Promise<unknown> {
    const schema = this.schemas?.[command];
    if (!schema) return payload;
    const r = await validatePayload(schema, payload);
    if (r.ok) return r.value;
    throw new CodeqError('VALIDATION_FAILED', `payload of '${command}' failed validation: ${formatIssues(r.issues)}`, { command, issues: r.issues });
  }

  async submit<C extends CommandName>(command: C, payload: PayloadOf<C>, opts: SubmitOptions = {}): Promise<TaskHandle<C>> {
    const key = opts.idempotencyKey ?? newIdempotencyKey(); // one key for every attempt (UUIDv7: see keys.ts)
    const input = toInput(command, this.schemas ? await this.checked(command, payload) : payload, opts, key);
    const signal = opts.signal;
    const coalescer = this.coalescer;
    if (!coalescer) return toHandle<C>(await tracedSubmit(input, () => this.call('submit', () => this.transport.createTask(input, signal ? { signal } : {}), signal)), this);
    // The coalesced path without tracedSubmit's extra async frame (this runs once per task).
    const span = startSubmitSpan(input);
    let task: Task;
    try {
      task = await coalescer.submit(input, signal);
    } catch (e) {
      endSubmitSpan(span, { error: e });
      throw e;
    }
    endSubmitSpan(span, task);
    return toHandle<C>(task, this);
  }

  async submitMany<const T extends readonly SubmitItem[]>(items: T & SubmitItems<T>, opts: { signal?: AbortSignal } = {}): Promise<SubmitManyResult[]> {
    // Items whose payload fails its schema are answered here and not sent.
    const rejected = new Map<number, CodeqError>();
    const all = await Promise.all(
      (items as readonly SubmitItem[]).map(async (it, i) => {
        const { command, payload, ...rest } = it;
        try {
          return toInput(command, this.schemas ? await this.checked(command, payload) : payload, rest, rest.idempotencyKey ?? newIdempotencyKey());
        } catch (e) {
          if (!CodeqError.is(e)) throw e;
          rejected.set(i, e);
          return undefined;
        }
      }),
    );
    const inputs = all.filter((x): x is CreateTaskInput => x !== undefined);
    const sent: SubmitManyResult[] = [];
    // The stream transport splits by itself (and pipelines); HTTP takes MAX_BATCH per request.
    const size = this.transport instanceof GrpcProducerTransport ? Math.max(1, inputs.length) : MAX_BATCH;
    for (let i = 0; i < inputs.length; i += size) {
      const chunk = inputs.slice(i, i + size);
      const signal = opts.signal;
      const spans = chunk.map((input) => startSubmitSpan(input));
      let res: BatchCreateOutcome[];
      try {
        res = await this.call('submitMany', () => this.transport.createTasks(chunk, signal ? { signal } : {}), signal);
      } catch (e) {
        for (const s of spans) endSubmitSpan(s, { error: e });
        throw e;
      }
      res.forEach((r, k) => endSubmitSpan(spans[k]!, r.task ? r.task : { error: r.error }));
      for (const r of res) sent.push(r.task ? { ok: true, task: toHandle(r.task, this) } : { ok: false, error: r.error });
    }
    if (rejected.size === 0) return sent;
    let next = 0;
    return all.map((_, i) => rejected.has(i) ? { ok: false as const, error: rejected.get(i)! } : sent[next++]!);
  }

  async get<C extends string = string>(id: string, opts: CallOptions = {}): Promise<TaskOf<C>> {
    return (await this.call('get', () => this.transport.getTask(id, opts), opts.signal)) as TaskOf<C>;
  }

  /**
   * The task's log lines (`ctx.log()` / `ctx.logger` of its workers), oldest first; the server
   * keeps the last 200 lines of a task. Page with `after` (the last line number seen).
   */
  logs(id: string, query: LogsQuery & CallOptions = {}): Promise<TaskLogLine[]> {
    const { after, limit, ...opts } = query;
    const t = this.transport;
    if (!t.getLogs) return Promise.reject(new CodeqError('VALIDATION_FAILED', 'logs() is not supported by this transport'));
    return this.call('logs', () => t.getLogs!(id, { ...(after !== undefined ? { after } : {}), ...(limit !== undefined ? { limit } : {}) }, opts), opts.signal);
  }

  getResult(id: string, opts: CallOptions = {}): Promise<TaskResult> {
    return this.call('getResult', () => this.transport.getResult(id, 0, opts), opts.signal);
  }

  async waitForResult<C extends string = string>(id: string, opts: WaitOptions = {}): Promise<TaskResult<PayloadOf<C>, ResultOf<C>>> {
    return (await this.waitAny(id, opts)) as TaskResult<PayloadOf<C>, ResultOf<C>>;
  }

  private async waitAny(id: string, opts: WaitOptions): Promise<TaskResult> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (opts.signal?.aborted) throw abortReason(opts.signal);
      const left = deadline - Date.now();
      if (left <= 0) break;
      // The server caps a wait at 60 s; the local timer ends the last wait at the deadline.
      const waitSeconds = Math.min(60, Math.ceil(left / 1000));
      const timer = AbortSignal.timeout(left);
      const signal = opts.signal ? AbortSignal.any([opts.signal, timer]) : timer;
      try {
        return await withRetry(() => this.transport.getResult(id, waitSeconds, { signal }), this.retry, { op: 'waitForResult', logger: this.logger, signal, deadline });
      } catch (e) {
        if (opts.signal?.aborted) throw abortReason(opts.signal);
        if (timer.aborted || isAbortError(e)) break;
        if (CodeqError.is(e) && e.code === 'RESULT_NOT_FOUND') continue; // the wait ended without a result
        if (CodeqError.is(e) && e.spec.retryable && Date.now() < deadline) continue;
        throw e;
      }
    }
    // One last look without waiting, then give up.
    try {
      return await this.transport.getResult(id, 0, opts.signal ? { signal: opts.signal } : {});
    } catch (e) {
      if (CodeqError.is(e) && (e.code === 'RESULT_NOT_FOUND' || e.spec.retryable)) {
        throw new CodeqError('RESULT_NOT_FOUND', `no result for task ${id} after ${timeoutMs} ms`, { taskId: id, timedOut: true, timeoutMs }, { cause: e });
      }
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.coalescer?.close(); // sends what is queued and waits for its answers
    if (this.ownsTransport) await this.transport.close();
  }
}

/**
 * Creates a producer: over the gRPC producer stream when `grpcAddress` is given, else over HTTP.
 *
 * ```ts
 * const producer = createProducer({
 *   grpcAddress: 'localhost:9092',      // submissions on the producer stream
 *   baseUrl: 'http://localhost:8080',   // reads and waitForResult over HTTP
 *   token: process.env.CODEQ_TOKEN!,
 * });
 * const handle = await producer.submit('email.send', { to: 'a@example.com' }, { priority: 5 });
 * const result = await handle.result({ timeoutMs: 30_000 }); // throws TaskFailedError / TaskCancelledError
 * ```
 */
export function createProducer(opts: ProducerOptions): Producer {
  return new DefaultProducer(opts);
}
