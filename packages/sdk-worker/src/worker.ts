import { setMaxListeners } from 'node:events';
import { CodeqError } from '@codeq/proto';
import {
  checkSchemas,
  formatIssues,
  validatePayload,
  type Commands as ProducerCommands,
  type CommandNameIn,
  type CommandSchemasIn,
  type DeclaredResultIn,
  type PayloadIn,
  type ResultIn,
  type TaskIn,
} from '@codeq/sdk-producer';
import {
  HttpTransport,
  backoffMs,
  isAbortError,
  isLeaseLost,
  log,
  sleep,
  toCodeqError,
  type Logger,
  type LogLineInput,
  type ClaimInput,
  type Task,
  type WorkerTransport,
} from '@codeq/sdk-producer/transport';
import { HandlerTimeoutError, LeaseLostError, PermanentFailure, RetryTask, TaskCancelledError, WorkerStoppedError } from './errors.js';
import { GrpcWorkerTransport, type GrpcWorkerTransportOptions } from './grpc-worker-transport.js';
import { endProcessSpan, startProcessSpan } from './tracing.js';

/** The wire of the claim loop: HTTP long-polls, or the gRPC worker stream. */
export type TransportKind = 'http' | 'grpc';

/**
 * Typed payloads. It extends the producer SDK's `Commands`, so augmenting
 * `declare module '@codeq/sdk-producer' { interface Commands { … } }` types producers and
 * handlers alike (augmenting `@codeq/sdk-worker` works too, for handlers only).
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled through declaration merging
export interface Commands extends ProducerCommands {}

/** The payload type of command `C`: declared in {@link Commands}, else `unknown`. */
export type PayloadOf<C extends string> = PayloadIn<Commands, C>;

/** The result type of command `C`: its declared `result`, else `Record<string, unknown>`. */
export type ResultOf<C extends string> = ResultIn<Commands, C>;

/** The task of command `C`; for a union of commands a union discriminated by `task.command`. */
export type TaskOf<C extends string> = TaskIn<Commands, C>;

/** Command names a worker accepts: declared ones, and any string unless `Register['strictCommands']` is on. */
export type CommandName = CommandNameIn<Commands>;

/** What a handler gets besides the task. */
export interface TaskContext {
  /**
   * Aborts when the lease is lost (expired, taken over, task deleted: reason {@link LeaseLostError}),
   * when a producer cancelled the task ({@link TaskCancelledError}) or when a stop's deadline passes
   * ({@link WorkerStoppedError}).
   */
  readonly signal: AbortSignal;
  readonly taskId: string;
  /** Fencing token of this delivery ('' when the server sent none). */
  readonly leaseId: string;
  /** 1 for the first delivery. */
  readonly attempt: number;
  /** Record a FAILED result (terminal, no retry). Throws; use `return ctx.fail(…)` or `ctx.fail(…)`. */
  fail(message: string): never;
  /** Nack now: redeliver after `delaySeconds` (default: the server's backoff). Throws. */
  retry(opts?: { delaySeconds?: number; reason?: string }): never;
  /** Extend the lease now (automatic heartbeats run anyway unless disabled). */
  heartbeat(extendSeconds?: number): Promise<void>;
  /**
   * Report progress, stored on the task and shown by `GET /tasks/:id` (`progress`), `codeq tasks
   * get` and the producer's `get()`: a finite number (0–100 by convention) or a JSON object of at
   * most 4 KiB. Calls are coalesced: the latest value wins and each task writes at most about once
   * a second; the last value is written before the outcome is recorded. Throws a `CodeqError`
   * `VALIDATION_FAILED` at once for a value the server would refuse.
   */
  progress(value: number | Record<string, unknown>): void;
  /**
   * Append a line to the task's log (`codeq tasks logs <id>`, the producer's `logs(id)`), at level
   * info: strings as they are, other values as JSON, joined by spaces. Buffered and sent with at
   * most about one write a second per task; flushed before the outcome. The server keeps the last
   * 200 lines of a task and cuts lines longer than 2 KiB.
   */
  log(...args: unknown[]): void;
  /**
   * A logger bound to this task: calls go to the worker's `logger` with `taskId`, `command` and
   * `attempt` fields, and calls at info, warn and error also go to the task's log (message, then
   * the fields as JSON). Takes `(message, fields?)` or pino's `(fields, message?)`; `child()` adds
   * fields.
   */
  readonly logger: TaskLogger;
}

type LogFields = Record<string, unknown>;
type LogMethod = {
  (message: string, fields?: LogFields): void;
  (fields: LogFields, message?: string): void;
};

/** {@link TaskContext.logger}: message-first or fields-first (pino) calls, bound to the task. */
export interface TaskLogger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  /** A logger with `bindings` added to every call's fields. */
  child(bindings: LogFields): TaskLogger;
}

/**
 * Processes one task. The return value becomes the COMPLETED result (objects as they are,
 * `undefined` → `{}`, anything else → `{ value }`). Throwing nacks the task (retry with backoff);
 * throwing {@link PermanentFailure} (or calling `ctx.fail`) records FAILED.
 */
export type Handler<C extends string = string> = (task: TaskOf<C>, ctx: TaskContext) => unknown;

/** The context of a handler in a {@link HandlerMap}: {@link TaskContext} plus the task itself. */
export type HandlerContext<C extends string = string> = TaskContext & { readonly task: TaskOf<C> };

/** What a map handler of `C` returns: its declared result (or a promise of it), anything when none is declared. */
export type HandlerReturn<C extends string> = [DeclaredResultIn<Commands, C>] extends [undefined] ? unknown : ResultOf<C> | Promise<ResultOf<C>>;

/** One handler of a {@link HandlerMap}: gets the parsed (and validated) payload and the context. */
export type MapHandler<C extends string> = (data: PayloadOf<C>, ctx: HandlerContext<C>) => HandlerReturn<C>;

/** Handlers by command (`handlers: { 'email.send': async (data, ctx) => … }`). */
export type HandlerMap<C extends string> = { readonly [K in C]: MapHandler<K> };

/** Hooks for logging and metrics. */
export type WorkerEvent =
  | { type: 'claimed'; taskId: string; command: string; attempt: number; leaseId: string }
  | { type: 'completed'; taskId: string; command: string; attempt: number; durationMs: number }
  | { type: 'failed'; taskId: string; command: string; attempt: number; durationMs: number; error: string }
  | { type: 'nacked'; taskId: string; command: string; attempt: number; durationMs: number; reason: string; status: 'requeued' | 'dlq'; delaySeconds: number }
  | { type: 'abandoned'; taskId: string; command: string; attempt: number; reason: string }
  | { type: 'lease-lost'; taskId: string; command: string; attempt: number; reason: string }
  /** A producer cancelled the task: `ctx.signal` aborted with TaskCancelledError, nothing more is recorded. */
  | { type: 'cancelled'; taskId: string; command: string; attempt: number; durationMs: number }
  | { type: 'error'; phase: 'claim' | 'heartbeat' | 'result' | 'fatal'; error: Error; taskId?: string; command?: string }
  /**
   * Recording the outcome failed `attempts` times (or for `resultRetry.maxMs`): the worker gave up,
   * stopped renewing the lease, and the task returns to the queue when its lease expires.
   */
  | { type: 'result-gave-up'; taskId: string; command: string; attempt: number; outcome: 'complete' | 'fail' | 'nack' | 'abandon'; attempts: number; error: string }
  /** The handler ran longer than `handlerTimeoutMs`: `ctx.signal` aborted with HandlerTimeoutError, the task is nacked. */
  | { type: 'handler-timeout'; taskId: string; command: string; attempt: number; timeoutMs: number }
  | { type: 'reconnected'; downtimeMs: number }
  | { type: 'stopped' };

/**
 * Events of {@link Worker.on}: every {@link WorkerEvent} type by name, plus two derived ones:
 * `retrying` (a nack that requeued the task: the `nacked` event with `status: 'requeued'`) and
 * `failed`, which fires for a FAILED result and also for a nack that dead-lettered the task
 * (then `deadLettered: true`, `error` is the nack reason).
 */
export type WorkerEventMap = { [T in Exclude<WorkerEvent['type'], 'failed'>]: Extract<WorkerEvent, { type: T }> } & {
  failed: Extract<WorkerEvent, { type: 'failed' }> & { deadLettered?: boolean };
  retrying: Extract<WorkerEvent, { type: 'nacked' }> & { status: 'requeued' };
};

/** Names of the events {@link Worker.on} accepts. */
export type WorkerEventName = keyof WorkerEventMap;

/** A listener of event `K`. Its return value is ignored; a throw (or rejected promise) is logged, never breaks the worker. */
export type WorkerListener<K extends WorkerEventName> = (event: WorkerEventMap[K]) => unknown;

/**
 * Where to connect. With `grpcAddress` the worker runs its claim loop on the gRPC worker stream
 * (`transport` defaults to `'grpc'`); without it, on HTTP long-polls. Or pass a ready transport.
 */
export type WorkerTarget =
  | {
      /** Server base URL of the HTTP API, e.g. `http://localhost:8080`. Required for `transport: 'http'`. */
      baseUrl?: string;
      /** Worker stream address (`WORKER_STREAM_ADDR`), e.g. `localhost:9091`. */
      grpcAddress?: string;
      /** Worker bearer token (scopes `codeq:claim`, `codeq:heartbeat`, `codeq:nack`, `codeq:result`, `codeq:abandon`). */
      token: string;
      /** Wire of the claim loop. @default `'grpc'` when `grpcAddress` is set, else `'http'` */
      transport?: TransportKind;
      /** gRPC settings: TLS credentials, channel options, the Hello worker id, `readyTimeoutMs` for upstream servers. @default plaintext */
      grpc?: Pick<GrpcWorkerTransportOptions, 'credentials' | 'channelOptions' | 'workerId' | 'readyTimeoutMs'>;
    }
  | {
      /** Use this transport (e.g. a shared HttpTransport or GrpcWorkerTransport); the worker does not close it. */
      transport: WorkerTransport;
      baseUrl?: string;
      grpcAddress?: string;
      token?: string;
    };

/**
 * The handler side of {@link WorkerOptions}: one `handler` for all `commands`, or a `handlers`
 * map by command (then `commands` defaults to the map's keys). Give exactly one of the two
 * (checked when the worker is created: `VALIDATION_FAILED`).
 */
export interface WorkerHandlers<C extends string> {
  /** Commands to claim, in priority order. Required with `handler`. @default the keys of `handlers` */
  commands?: readonly C[];
  /** One handler for every command: gets the task (`task.data` is the payload) and the context. */
  handler?: Handler<C>;
  /**
   * A handler per command, called with the parsed (and validated) payload and the context
   * (`ctx.task` is the task). A claimed task whose command has no handler is recorded FAILED.
   */
  handlers?: HandlerMap<C>;
}

/** Options of {@link createWorker}. */
export type WorkerOptions<C extends string = string> = WorkerTarget & WorkerHandlers<C> & WorkerSettings;

/** The settings of {@link WorkerOptions} besides the target and the handlers. */
export interface WorkerSettings {
  /**
   * Runtime validation of payloads by command with any Standard Schema validator (zod, valibot,
   * arktype …), before the handler runs. A payload that fails is recorded FAILED (not retried)
   * with the issues as the error; a passing one reaches the handler as the schema outputs it.
   */
  schemas?: CommandSchemasIn<Commands>;
  /** Tasks processed at once (one claim loop per slot). @default 1 */
  concurrency?: number;
  /** Lease length requested on claim and heartbeat. @default the server's DEFAULT_LEASE_SECONDS (300) */
  leaseSeconds?: number;
  /** Long-poll of each claim, at most 30 (HTTP); over gRPC a claim waits for a push and this only bounds one wait. @default 30 */
  waitSeconds?: number;
  /** Automatic lease renewal while the handler runs: `false` disables it. @default every lease/3 */
  heartbeat?: boolean | { intervalMs?: number };
  /** Delay of nacks after a thrown error. @default the server's backoff policy */
  nackDelaySeconds?: number | ((task: Task, error: unknown) => number | undefined);
  /** Aborting this signal stops the worker (drain up to `drainTimeoutMs`). */
  signal?: AbortSignal;
  /** How long `stop()` waits for in-flight handlers before aborting them. @default 30000 */
  drainTimeoutMs?: number;
  /** After aborting handlers at the deadline, wait this long for them to settle, then abandon the rest. @default 1000 */
  abortGraceMs?: number;
  /** Stop on SIGTERM/SIGINT (a second signal stops at once). @default false */
  handleSignals?: boolean;
  /** Backoff while the server is unreachable. @default { initialMs: 100, maxMs: 2000 } */
  reconnect?: { initialMs?: number; maxMs?: number };
  /** Per-request timeout (long-polls add their wait), or how long a stream ack may take (gRPC). @default 30000 */
  timeoutMs?: number;
  /**
   * Longest a handler may run. When it passes, `ctx.signal` aborts with {@link HandlerTimeoutError}
   * and the task is nacked at once (redelivered after the nack delay; counts as an attempt, so a
   * handler that always hangs ends in the DLQ); the slot is freed, a later settle of the handler is
   * ignored. A function sets it per task (`undefined` or 0: no limit). @default no limit
   */
  handlerTimeoutMs?: number | ((task: Task) => number | undefined);
  /**
   * Retries of a result / nack / abandon that fails transiently (server down, 5xx): at most
   * `maxAttempts` tries and `maxMs` since the first. Then the worker gives up (event
   * `result-gave-up`), stops the task's heartbeats, and the task is redelivered once its lease
   * expires. @default { maxAttempts: 20, maxMs: 60000 }
   */
  resultRetry?: { maxAttempts?: number; maxMs?: number };
  /**
   * The local clock (ms since epoch), for tests. Lease deadlines are computed from durations (the
   * lease granted, measured from when the answer arrived on this clock), never by comparing the
   * server's `leaseUntil` with this clock, so a skewed worker clock does not matter. @default Date.now
   */
  now?: () => number;
  logger?: Logger;
  /**
   * Send `ctx.progress()`, `ctx.log()` and `ctx.logger` lines to the server (task progress and
   * logs are codeQ-TS additions). `false` drops them (ctx.logger still logs to `logger`): use it
   * against an upstream server's worker stream, which does not answer these events. @default true
   */
  taskNotes?: boolean;
  onEvent?: (event: WorkerEvent) => void;
}

/**
 * A token without the scope an outcome or heartbeat needs: it can never succeed. Matched on the
 * text too, so a `not-owner` 403 from a server that sends no `code` (upstream) stays per-task.
 */
function isMissingScope(err: CodeqError): boolean {
  return err.code === 'FORBIDDEN' && /missing scope/i.test(err.message);
}

/** Options of {@link Worker.stop}. */
export interface StopOptions {
  /** How long in-flight handlers may run on. @default the worker's `drainTimeoutMs` (30000) */
  deadlineMs?: number;
  /** Alias of `deadlineMs` (`deadlineMs` wins when both are given). */
  timeoutMs?: number;
  /** `false`: abort in-flight handlers now instead of letting them finish. @default true */
  drain?: boolean;
}

/** A running (or stopped) worker. */
export interface Worker {
  /** Begin claiming. Idempotent. */
  start(): Worker;
  /**
   * Stop claiming, let in-flight handlers finish for up to `deadlineMs`, then abort them (their
   * tasks are abandoned). Resolves when stopped. `timeoutMs` is an alias of `deadlineMs`, and
   * `drain: false` aborts the handlers at once (sdk-and-cli.md §3.6 `stop({drain, timeoutMs})`).
   */
  stop(opts?: StopOptions): Promise<void>;
  /** Resolves when the worker has stopped; rejects if it stopped on a fatal error (bad token, bad request). */
  readonly done: Promise<void>;
  /** Tasks being processed now. */
  readonly inFlight: number;
  readonly state: 'idle' | 'running' | 'draining' | 'stopped';
  /** The commands the worker claims. */
  readonly commands: readonly string[];
  /**
   * Adds a listener (alongside `onEvent`): `worker.on('completed', (e) => …)`. Listeners run in
   * order of registration; one that throws is logged and the others still run.
   */
  on<K extends WorkerEventName>(event: K, listener: WorkerListener<K>): Worker;
  /** Adds a listener that is removed after its first call. */
  once<K extends WorkerEventName>(event: K, listener: WorkerListener<K>): Worker;
  /** Removes a listener added with `on` or `once`. */
  off<K extends WorkerEventName>(event: K, listener: WorkerListener<K>): Worker;
}

type Outcome =
  | { kind: 'complete'; result: Record<string, unknown> }
  | { kind: 'fail'; message: string }
  | { kind: 'nack'; reason: string; delaySeconds: number | undefined }
  | { kind: 'abandon'; reason: string };

interface InFlight {
  task: Task;
  leaseId: string;
  started: number;
  /** Local lower bound of the server's lease end (ms since epoch). */
  leaseDeadline: number;
  leaseMs: number;
  /** Aborts the handler (lease lost / hard stop); made when the handler reads `signal` or on abort. */
  handlerCtl: AbortController | undefined;
  /**
   * Cancels heartbeats, notes and result retries of this task; made on first use (see
   * taskSignal: most tasks never need one), aborted by endTask.
   */
  cancelCtl: AbortController | undefined;
  /** endTask ran: no more calls for this task (what cancelCtl's abort says when it exists). */
  ended: boolean;
  /** The heartbeat on the wire, if any (the task is forgotten only after it settled). */
  heartbeating: Promise<void> | undefined;
  /** ctx.progress()/ctx.log() waiting to be written (coalesced, see flushNotes); made on first use. */
  notes: Notes | undefined;
  lost: boolean;
  hardStopped: boolean;
  detached: boolean;
  finished: boolean;
}

/** Notes (progress, log lines) of one task waiting for the next write. */
interface Notes {
  progress: number | Record<string, unknown> | undefined;
  lines: LogLineInput[];
  dropped: number;
  timer: NodeJS.Timeout | undefined;
  sending: Promise<void> | undefined;
  lastSentAt: number;
  /** The outcome is about to be recorded: flushNotes() writes the rest, no timer is armed. */
  flushing: boolean;
}

/** At most one progress/log write per task per this interval (latest progress wins). */
const NOTES_INTERVAL_MS = 1000;
/** Server limits (docs/operator-api.md § Task progress and logs). */
const MAX_PROGRESS_BYTES = 4096;
const MAX_LINES_PER_WRITE = 100;
/** Lines buffered per task before the oldest are dropped (the server keeps 200 anyway). */
const MAX_PENDING_LINES = 200;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Checks a progress value as the server would (so a bad call fails where it is made). */
function checkProgress(value: unknown): number | Record<string, unknown> {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new CodeqError('VALIDATION_FAILED', 'progress: a number must be finite');
    return value;
  }
  if (!isPlainObject(value)) throw new CodeqError('VALIDATION_FAILED', 'progress: a finite number or a plain object');
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new CodeqError('VALIDATION_FAILED', `progress: not serialisable: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (Buffer.byteLength(text, 'utf8') > MAX_PROGRESS_BYTES) throw new CodeqError('VALIDATION_FAILED', `progress: larger than ${MAX_PROGRESS_BYTES} bytes of JSON`);
  return JSON.parse(text) as Record<string, unknown>; // a snapshot: later changes of the object do not leak in
}

function logText(args: readonly unknown[]): string {
  return args
    .map((a) => {
      if (typeof a === 'string') return a;
      if (a instanceof Error) return a.stack ?? `${a.name}: ${a.message}`;
      try {
        return JSON.stringify(a) ?? String(a);
      } catch {
        return String(a);
      }
    })
    .join(' ');
}

const FATAL = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'VALIDATION_FAILED', 'UNPROCESSABLE', 'UNSUPPORTED_MEDIA_TYPE', 'PAYLOAD_TOO_LARGE', 'NOT_FOUND']);
const REJECTED_RESULT = new Set(['VALIDATION_FAILED', 'UNPROCESSABLE', 'PAYLOAD_TOO_LARGE']);
const MAX_REASON = 1000;
/**
 * Abort reason of a task's `cancelCtl` (heartbeats, result retries) once the task is done. One
 * shared object: `abort()` without a reason builds a DOMException with a stack for every task.
 */
const TASK_SETTLED = Object.assign(new Error('task settled'), { name: 'AbortError' });
const NO_CALL_OPTS: Readonly<Record<string, never>> = Object.freeze({});

/** What a {@link TaskCtx} needs from its worker. */
interface CtxHost {
  handlerCtl(e: InFlight): AbortController;
  taskLogger(e: InFlight): TaskLogger;
  progress(e: InFlight, value: number | Record<string, unknown>): void;
  log(e: InFlight, args: unknown[]): void;
  heartbeat(e: InFlight, extendSeconds: number | undefined): Promise<void>;
}

/**
 * A handler's context (`TaskContext` plus `task`). A class so that a task costs one small
 * object, not a dozen closures: the signal, the logger and the bound methods are made on first
 * access (getters), so destructuring (`async (task, { signal, progress }) => …`) still works.
 */
class TaskCtx implements TaskContext {
  #logger: TaskLogger | undefined;
  #progress: TaskContext['progress'] | undefined;
  #log: TaskContext['log'] | undefined;
  #heartbeat: TaskContext['heartbeat'] | undefined;

  readonly #host: CtxHost;
  readonly #e: InFlight;
  readonly task: Task;

  constructor(host: CtxHost, e: InFlight, task: Task) {
    this.#host = host;
    this.#e = e;
    this.task = task;
  }

  get signal(): AbortSignal {
    return this.#host.handlerCtl(this.#e).signal;
  }
  get taskId(): string {
    return this.#e.task.id;
  }
  get leaseId(): string {
    return this.#e.leaseId;
  }
  get attempt(): number {
    return this.#e.task.attempts;
  }
  get logger(): TaskLogger {
    return (this.#logger ??= this.#host.taskLogger(this.#e));
  }
  get progress(): TaskContext['progress'] {
    return (this.#progress ??= (value) => this.#host.progress(this.#e, value));
  }
  get log(): TaskContext['log'] {
    return (this.#log ??= (...args: unknown[]) => this.#host.log(this.#e, args));
  }
  get heartbeat(): TaskContext['heartbeat'] {
    return (this.#heartbeat ??= (extendSeconds?: number) => this.#host.heartbeat(this.#e, extendSeconds));
  }
  get fail(): TaskContext['fail'] {
    return failTask;
  }
  get retry(): TaskContext['retry'] {
    return retryTask;
  }
}

function failTask(message: string): never {
  throw new PermanentFailure(message);
}

function retryTask(o: { delaySeconds?: number; reason?: string } = {}): never {
  throw new RetryTask(o.reason, o.delaySeconds);
}

function errorMessage(e: unknown): string {
  const m = e instanceof Error ? e.message : typeof e === 'string' ? e : JSON.stringify(e);
  const s = (m ?? '').trim() || (e instanceof Error ? e.name : 'error');
  return s.length > MAX_REASON ? s.slice(0, MAX_REASON - 1) + '…' : s;
}

/**
 * The lease the server granted on a claim, as a duration: `leaseUntil − updatedAt` (both set by
 * the server's clock at the claim; leaseUntil is whole seconds, hence rounded up). 300 s when
 * the task does not say.
 */
function grantedLeaseMs(task: Task): number {
  const until = task.leaseUntil ? Date.parse(task.leaseUntil) : NaN;
  const at = task.updatedAt ? Date.parse(task.updatedAt) : NaN;
  const d = until - at;
  return Number.isFinite(d) && d > 0 ? Math.max(1000, Math.ceil(d / 1000) * 1000) : 300_000;
}

/** The message of JSON.stringify's error for `v`, or undefined when it serialises. */
function unserialisable(v: unknown): string | undefined {
  try {
    JSON.stringify(v);
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** The handler's return value as a result object. */
export function toResultObject(v: unknown): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v === 'object' && !Array.isArray(v)) {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto === Object.prototype || proto === null) return v as Record<string, unknown>;
  }
  return { value: v };
}

/** The transport for `opts`, and whether the worker owns (closes) it. */
function openTransport(opts: WorkerTarget & { timeoutMs?: number; logger?: Logger }): { transport: WorkerTransport; owned: boolean } {
  if (typeof opts.transport === 'object') return { transport: opts.transport, owned: false };
  const kind: TransportKind = opts.transport ?? (opts.grpcAddress ? 'grpc' : 'http');
  const common = { token: opts.token, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.logger ? { logger: opts.logger } : {}) };
  if (kind === 'grpc') {
    if (!opts.grpcAddress) throw new CodeqError('VALIDATION_FAILED', "grpcAddress is required with transport: 'grpc' (the worker stream, e.g. localhost:9091)");
    return { transport: new GrpcWorkerTransport({ ...common, address: opts.grpcAddress, ...(opts.baseUrl !== undefined ? { baseUrl: opts.baseUrl } : {}), ...opts.grpc }), owned: true };
  }
  if (opts.baseUrl === undefined) throw new CodeqError('VALIDATION_FAILED', 'baseUrl is required (or grpcAddress for the gRPC transport)');
  return { transport: new HttpTransport({ ...common, baseUrl: opts.baseUrl }), owned: true };
}

class ClaimLoopWorker<C extends string> implements Worker {
  state: Worker['state'] = 'idle';
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;
  private readonly transport: WorkerTransport;
  private readonly ownsTransport: boolean;
  private readonly stopCtl = new AbortController();
  private readonly inflight = new Map<string, InFlight>();
  /** Due time of each running task's next heartbeat (one timer for all, see scheduleHeartbeat). */
  private readonly hbDue = new Map<InFlight, number>();
  private hbTimer: NodeJS.Timeout | undefined;
  private hbTimerAt = Infinity;
  /** The one lease watchdog timer (see armWatchdog) and when it fires. */
  private wdTimer: NodeJS.Timeout | undefined;
  private wdAt = Infinity;
  /** The claim request and options of every slot (the same objects each time). */
  private readonly claimInput: ClaimInput;
  private readonly claimOpts: { signal: AbortSignal };
  private slots: Promise<void>[] = [];
  private fatalError: Error | undefined;
  private hardStopAt: number | undefined;
  private hardTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private downSince: number | undefined;
  private finished = false;
  private readonly concurrency: number;
  private readonly waitSeconds: number;
  private readonly drainTimeoutMs: number;
  private readonly abortGraceMs: number;
  private readonly reconnect: { initialMs: number; maxMs: number; factor: number; jitter: number };
  private readonly heartbeatOn: boolean;
  private readonly heartbeatIntervalMs: number | undefined;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly resultMaxAttempts: number;
  private readonly resultMaxMs: number;
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    log(this.logger, 'info', `codeq worker: ${sig}, stopping`);
    void this.stop(this.state === 'running' ? {} : { deadlineMs: 0 });
  };
  private readonly onUserAbort = (): void => void this.stop();
  readonly commands: readonly string[];
  private readonly handlerMap: Readonly<Record<string, MapHandler<string> | undefined>> | undefined;
  private readonly listeners = new Map<WorkerEventName, Array<{ fn: (e: never) => unknown; once: boolean }>>();

  constructor(private readonly opts: WorkerOptions<C>) {
    const hasHandler = opts.handler !== undefined;
    const hasMap = opts.handlers !== undefined;
    if (hasHandler === hasMap) throw new CodeqError('VALIDATION_FAILED', 'give exactly one of handler and handlers');
    if (hasHandler && typeof opts.handler !== 'function') throw new CodeqError('VALIDATION_FAILED', 'handler must be a function');
    if (hasMap) {
      const map = opts.handlers as unknown;
      if (typeof map !== 'object' || map === null) throw new CodeqError('VALIDATION_FAILED', 'handlers must be an object of functions by command');
      for (const [command, h] of Object.entries(map)) {
        if (typeof h !== 'function') throw new CodeqError('VALIDATION_FAILED', `handlers['${command}'] must be a function`);
      }
      this.handlerMap = map as Record<string, MapHandler<string> | undefined>;
    }
    this.commands = opts.commands ?? Object.keys(this.handlerMap ?? {});
    if (!this.commands.length) throw new CodeqError('VALIDATION_FAILED', 'commands: at least one command is required');
    try {
      checkSchemas(opts.schemas);
    } catch (e) {
      throw new CodeqError('VALIDATION_FAILED', (e as Error).message);
    }
    const { transport, owned } = openTransport(opts);
    this.ownsTransport = owned;
    this.transport = transport;
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? 1));
    this.waitSeconds = Math.max(0, Math.min(30, Math.floor(opts.waitSeconds ?? 30)));
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 30_000;
    this.abortGraceMs = opts.abortGraceMs ?? 1000;
    this.reconnect = { initialMs: opts.reconnect?.initialMs ?? 100, maxMs: opts.reconnect?.maxMs ?? 2000, factor: 2, jitter: 0.5 };
    this.heartbeatOn = opts.heartbeat !== false;
    this.heartbeatIntervalMs = typeof opts.heartbeat === 'object' ? opts.heartbeat.intervalMs : undefined;
    this.logger = opts.logger ?? {};
    this.now = opts.now ?? Date.now;
    this.resultMaxAttempts = Math.max(1, opts.resultRetry?.maxAttempts ?? 20);
    this.resultMaxMs = Math.max(0, opts.resultRetry?.maxMs ?? 60_000);
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => undefined); // awaiting `done` still sees the rejection
    setMaxListeners(0, this.stopCtl.signal); // every slot's claim may listen to it
    this.claimInput = { commands: this.commands, waitSeconds: this.waitSeconds, ...(opts.leaseSeconds ? { leaseSeconds: opts.leaseSeconds } : {}) };
    this.claimOpts = { signal: this.stopCtl.signal };
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  start(): Worker {
    if (this.state !== 'idle') return this;
    this.state = 'running';
    if (this.opts.handleSignals) {
      process.on('SIGTERM', this.onSignal);
      process.on('SIGINT', this.onSignal);
    }
    if (this.opts.signal) {
      if (this.opts.signal.aborted) queueMicrotask(this.onUserAbort);
      else this.opts.signal.addEventListener('abort', this.onUserAbort, { once: true });
    }
    log(this.logger, 'info', 'codeq worker: started', { commands: this.commands, concurrency: this.concurrency, target: this.transport.target });
    for (let i = 0; i < this.concurrency; i++) this.slots.push(this.slotLoop(i));
    void Promise.all(this.slots).then(() => this.finish());
    return this;
  }

  stop(opts: StopOptions = {}): Promise<void> {
    const ms = opts.drain === false ? 0 : Math.max(0, opts.deadlineMs ?? opts.timeoutMs ?? this.drainTimeoutMs);
    if (this.state === 'idle') {
      this.state = 'draining';
      this.finish();
    } else if (this.state === 'running') {
      this.state = 'draining';
      this.stopCtl.abort(new WorkerStoppedError());
      log(this.logger, 'info', 'codeq worker: draining', { inFlight: this.inflight.size, deadlineMs: ms });
    }
    if (!this.finished) {
      const at = this.now() + ms;
      if (this.hardStopAt === undefined || at < this.hardStopAt) {
        this.hardStopAt = at;
        clearTimeout(this.hardTimer);
        this.hardTimer = setTimeout(() => this.hardStop(), ms);
      }
      if (this.inflight.size === 0 && this.slots.length === 0) this.finish();
    }
    return this.done.catch(() => undefined);
  }

  // ---- claim loop ---------------------------------------------------------------------------

  private async slotLoop(slot: number): Promise<void> {
    let failures = 0;
    // Outcomes of this slot's finished handlers still being recorded. The slot claims its next
    // task while the previous result is on its way (one round trip less per task, as upstream's
    // slot loop does); the loop ends only after they are recorded, so drains wait for them.
    const settling = new Set<Promise<void>>();
    while (this.state === 'running') {
      let task: Task | null;
      try {
        task = await this.transport.claim(this.claimInput, this.claimOpts);
      } catch (e) {
        if (this.state !== 'running' || isAbortError(e)) break;
        const err = toCodeqError(e, this.transport.target);
        if (FATAL.has(err.code)) {
          this.fatal(err);
          break;
        }
        failures++;
        if (this.downSince === undefined) {
          this.downSince = this.now();
          log(this.logger, 'warn', 'codeq worker: claim failed, retrying', { slot, code: err.code, error: err.message });
          this.emit({ type: 'error', phase: 'claim', error: err });
        }
        try {
          await sleep(backoffMs(this.reconnect, failures), this.stopCtl.signal);
        } catch {
          break;
        }
        continue;
      }
      failures = 0;
      if (this.downSince !== undefined) {
        const downtimeMs = this.now() - this.downSince;
        this.downSince = undefined;
        log(this.logger, 'info', 'codeq worker: reconnected', { downtimeMs });
        this.emit({ type: 'reconnected', downtimeMs });
      }
      if (!task) continue;
      if (this.state !== 'running' && this.finished) break;
      const { settled } = await this.process(task);
      settling.add(settled);
      void settled.then(() => settling.delete(settled));
    }
    await Promise.all(settling);
  }

  private fatal(err: CodeqError): void {
    if (this.fatalError) return;
    this.fatalError = err;
    log(this.logger, 'error', 'codeq worker: fatal error, stopping', { code: err.code, error: err.message });
    this.emit({ type: 'error', phase: 'fatal', error: err });
    void this.stop();
  }

  // ---- one task -----------------------------------------------------------------------------

  /** Runs the handler; resolves when it returned, with the promise of recording its outcome. */
  private async process(task: Task): Promise<{ settled: Promise<void> }> {
    const now = this.now();
    const leaseMs = this.opts.leaseSeconds ? this.opts.leaseSeconds * 1000 : grantedLeaseMs(task);
    const e: InFlight = {
      task,
      leaseId: task.leaseId ?? '',
      started: now,
      // A duration from the local arrival time: the server's absolute leaseUntil is never
      // compared with the local clock (they may disagree by minutes).
      leaseDeadline: now + leaseMs,
      leaseMs,
      handlerCtl: undefined,
      cancelCtl: undefined,
      ended: false,
      heartbeating: undefined,
      notes: undefined,
      lost: false,
      hardStopped: this.hardStopAt !== undefined && now >= this.hardStopAt,
      detached: false,
      finished: false,
    };
    this.inflight.set(task.id, e);
    if (this.observed()) this.emit({ type: 'claimed', taskId: task.id, command: task.command, attempt: task.attempts, leaseId: e.leaseId });
    this.armWatchdog(e);
    if (this.heartbeatOn) this.scheduleHeartbeat(e, now + this.heartbeatInterval(e));
    let outcome: Outcome;
    const t = this.opts.handlerTimeoutMs;
    const timeoutMs = typeof t === 'function' ? t(task) : t;
    const traced = startProcessSpan(task, task.workerId);
    try {
      let run = this.prepare(e);
      if (run instanceof Promise) run = await run; // only with a schema for the command
      if (typeof run === 'string') outcome = { kind: 'fail', message: run };
      else {
        const value = await traced.run(() => (timeoutMs && timeoutMs > 0 ? this.runWithTimeout(e, timeoutMs, run) : run()));
        outcome = { kind: 'complete', result: toResultObject(value) };
      }
      endProcessSpan(traced.span, outcome.kind);
    } catch (err) {
      outcome = this.classify(task, err);
      endProcessSpan(traced.span, outcome.kind, err);
    }
    return { settled: this.record(e, outcome) };
  }

  /**
   * The call of the task's handler, with the payload validated by its schema (if any); or the
   * FAILED reason when the payload is invalid or no handler takes the command.
   */
  private prepare(e: InFlight): (() => unknown) | string | Promise<(() => unknown) | string> {
    const task = e.task;
    const map = this.handlerMap;
    const mapped = map ? (Object.hasOwn(map, task.command) ? map[task.command] : undefined) : undefined;
    if (map && !mapped) {
      const known = Object.keys(map).join(', ');
      log(this.logger, 'warn', 'codeq worker: no handler for the command, recording FAILED', { taskId: task.id, command: task.command });
      return `no handler for command '${task.command}' in this worker's handlers (${known})`;
    }
    const schema = this.opts.schemas?.[task.command];
    if (!schema) return this.bindHandler(e, task, mapped); // no promise hop without a schema
    return validatePayload(schema, task.data).then((r) => {
      if (!r.ok) {
        log(this.logger, 'warn', 'codeq worker: payload failed validation, recording FAILED', { taskId: task.id, command: task.command });
        return `VALIDATION_FAILED: payload of '${task.command}' failed validation: ${formatIssues(r.issues)} ${JSON.stringify(r.issues.map((i) => ({ path: i.path.map(String), message: i.message })))}`;
      }
      return this.bindHandler(e, r.value !== task.data ? { ...task, data: r.value, payloadJson: r.value } : task, mapped);
    });
  }

  private bindHandler(e: InFlight, task: Task, mapped: MapHandler<string> | undefined): () => unknown {
    const ctx = new TaskCtx(this.ctxHost, e, task);
    if (mapped) return () => mapped(task.data, ctx);
    const handler = this.opts.handler as Handler<C>;
    return () => handler(task as TaskOf<C>, ctx);
  }

  /** Runs the handler; after `timeoutMs` aborts its signal and rejects with HandlerTimeoutError without waiting for it. */
  private runWithTimeout(e: InFlight, timeoutMs: number, call: () => unknown): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const err = new HandlerTimeoutError(e.task.id, timeoutMs);
        log(this.logger, 'warn', 'codeq worker: handler timed out, aborting it', { taskId: e.task.id, timeoutMs });
        this.emit({ type: 'handler-timeout', taskId: e.task.id, command: e.task.command, attempt: e.task.attempts, timeoutMs });
        this.handlerCtl(e).abort(err);
        reject(err);
      }, timeoutMs);
    });
    const run = (async () => call())();
    return Promise.race([run, timeout]).finally(() => clearTimeout(timer));
  }

  /** Records a handler's outcome (heartbeats go on until then) and forgets the task. Never rejects. */
  private async record(e: InFlight, first: Outcome): Promise<void> {
    let outcome = first;
    try {
      if (e.detached || e.lost) return;
      if (e.hardStopped && outcome.kind === 'nack') outcome = { kind: 'abandon', reason: 'worker stopped' };
      // The last progress and log lines are written while the lease is still held.
      if (e.notes) await this.flushNotes(e, e.notes);
      await this.settle(e, outcome);
    } catch (err) {
      log(this.logger, 'error', 'codeq worker: recording an outcome failed', { taskId: e.task.id, error: errorMessage(err) });
    } finally {
      e.finished = true;
      if (e.notes) clearTimeout(e.notes.timer);
      this.hbDue.delete(e);
      this.endTask(e);
      if (e.heartbeating) await e.heartbeating;
      if (this.inflight.get(e.task.id) === e) this.inflight.delete(e.task.id);
    }
  }

  private classify(task: Task, err: unknown): Outcome {
    if (err instanceof PermanentFailure) return { kind: 'fail', message: errorMessage(err) };
    if (err instanceof RetryTask) return { kind: 'nack', reason: errorMessage(err), delaySeconds: err.delaySeconds };
    // HandlerTimeoutError falls through: nacked like any transient failure.
    const d = this.opts.nackDelaySeconds;
    const delaySeconds = typeof d === 'function' ? d(task, err) : d;
    return { kind: 'nack', reason: errorMessage(err), delaySeconds };
  }

  /** The handler's abort controller, made on first use (most handlers never read their signal). */
  private handlerCtl(e: InFlight): AbortController {
    return (e.handlerCtl ??= new AbortController());
  }

  /** What a {@link TaskCtx} calls back into (one object per worker, not closures per task). */
  private readonly ctxHost: CtxHost = {
    handlerCtl: (e) => this.handlerCtl(e),
    taskLogger: (e) => this.taskLogger(e, {}),
    progress: (e, value) => {
      const v = checkProgress(value);
      if (e.finished || e.lost || e.detached || this.opts.taskNotes === false || !this.transport.reportProgress) return;
      this.notesOf(e).progress = v;
      this.scheduleNotes(e);
    },
    log: (e, args) => this.appendLine(e, 'info', logText(args)),
    heartbeat: (e, extendSeconds) => this.sendHeartbeat(e, extendSeconds ?? this.opts.leaseSeconds, true),
  };

  /** The task's bound logger (see TaskContext.logger). */
  private taskLogger(e: InFlight, bindings: LogFields): TaskLogger {
    const base = { taskId: e.task.id, command: e.task.command, attempt: e.task.attempts, ...bindings };
    const method =
      (level: 'debug' | 'info' | 'warn' | 'error'): LogMethod =>
      (a: string | LogFields, b?: string | LogFields): void => {
        const [message, fields] = typeof a === 'string' ? [a, (b ?? {}) as LogFields] : [typeof b === 'string' ? b : '', a ?? {}];
        log(this.logger, level, message, { ...base, ...fields });
        if (level === 'debug') return;
        const extra = { ...bindings, ...fields };
        this.appendLine(e, level, Object.keys(extra).length ? `${message} ${logText([extra])}` : message);
      };
    return {
      debug: method('debug'),
      info: method('info'),
      warn: method('warn'),
      error: method('error'),
      child: (more: LogFields) => this.taskLogger(e, { ...bindings, ...more }),
    };
  }

  private notesOf(e: InFlight): Notes {
    return (e.notes ??= { progress: undefined, lines: [], dropped: 0, timer: undefined, sending: undefined, lastSentAt: 0, flushing: false });
  }

  private appendLine(e: InFlight, level: LogLineInput['level'], message: string): void {
    if (e.finished || e.lost || e.detached || this.opts.taskNotes === false || !this.transport.appendLogs) return;
    const n = this.notesOf(e);
    n.lines.push({ level, message, at: new Date(this.now()).toISOString() });
    if (n.lines.length > MAX_PENDING_LINES) {
      n.dropped += n.lines.length - MAX_PENDING_LINES;
      n.lines.splice(0, n.lines.length - MAX_PENDING_LINES);
    }
    this.scheduleNotes(e);
  }

  /** Arms the task's notes timer: the next write at most once per NOTES_INTERVAL_MS. */
  private scheduleNotes(e: InFlight): void {
    const n = this.notesOf(e);
    if (n.timer || n.sending || n.flushing) return; // the write in flight reschedules when it is answered
    n.timer = setTimeout(
      () => {
        n.timer = undefined;
        n.sending = this.sendNotes(e).finally(() => {
          n.sending = undefined;
          if (!e.finished && (n.progress !== undefined || n.lines.length)) this.scheduleNotes(e);
        });
      },
      Math.max(0, n.lastSentAt + NOTES_INTERVAL_MS - this.now()),
    );
  }

  /** Writes the latest progress and up to 100 buffered lines. Failures are logged, never thrown. */
  private async sendNotes(e: InFlight): Promise<void> {
    const n = this.notesOf(e);
    if (e.lost || e.detached) {
      // The lease is gone: nothing more can be written for this delivery.
      n.progress = undefined;
      n.lines = [];
      return;
    }
    n.lastSentAt = this.now();
    const lease = e.leaseId ? { leaseId: e.leaseId } : {};
    const opts = { signal: this.taskSignal(e), timeoutMs: Math.max(1000, Math.min(10_000, Math.floor(e.leaseMs / 3))) };
    const jobs: Promise<unknown>[] = [];
    const progress = n.progress;
    n.progress = undefined;
    if (progress !== undefined && this.transport.reportProgress) jobs.push(this.transport.reportProgress(e.task.id, { progress, ...lease }, opts));
    if (n.lines.length && this.transport.appendLogs) {
      const lines = n.lines.splice(0, n.dropped ? MAX_LINES_PER_WRITE - 1 : MAX_LINES_PER_WRITE);
      if (n.dropped) {
        lines.unshift({ level: 'warn', message: `[codeq] ${n.dropped} log line(s) dropped: logged faster than they could be sent`, at: lines[0]?.at ?? new Date(this.now()).toISOString() });
        n.dropped = 0;
      }
      jobs.push(this.transport.appendLogs(e.task.id, { lines, ...lease }, opts));
    }
    for (const r of await Promise.allSettled(jobs)) {
      if (r.status === 'fulfilled' || isAbortError(r.reason)) continue;
      const err = toCodeqError(r.reason, this.transport.target);
      // A lost lease is the heartbeat's business; anything else is only worth a debug line.
      log(this.logger, 'debug', 'codeq worker: writing progress/log lines failed', { taskId: e.task.id, code: err.code, error: err.message });
    }
  }

  /** Before the outcome: write what ctx.progress()/ctx.log() left, ignoring the rate limit. */
  private async flushNotes(e: InFlight, n: Notes): Promise<void> {
    n.flushing = true;
    clearTimeout(n.timer);
    n.timer = undefined;
    for (let i = 0; i < 3; i++) {
      if (n.sending) await n.sending;
      if (n.progress === undefined && !n.lines.length) return;
      n.sending = this.sendNotes(e).finally(() => (n.sending = undefined));
    }
    if (n.sending) await n.sending;
  }

  /**
   * Lease watchdogs of all tasks run on one timer (not one per task): it fires at the earliest
   * lease deadline, ends the leases that are past theirs, and re-arms at the next one. A task
   * whose lease was renewed is simply not due when the timer comes.
   */
  private armWatchdog(e: InFlight): void {
    if (e.finished || e.lost || e.leaseDeadline >= this.wdAt) return;
    clearTimeout(this.wdTimer);
    this.wdAt = e.leaseDeadline;
    this.wdTimer = setTimeout(() => this.watchdogTick(), Math.max(0, e.leaseDeadline - this.now()));
  }

  private watchdogTick(): void {
    this.wdTimer = undefined;
    this.wdAt = Infinity;
    const now = this.now();
    let next: InFlight | undefined;
    for (const e of this.inflight.values()) {
      if (e.finished || e.lost || e.detached) continue;
      if (e.leaseDeadline <= now) this.loseLease(e, 'lease expired before it was renewed');
      else if (!next || e.leaseDeadline < next.leaseDeadline) next = e;
    }
    if (next) this.armWatchdog(next);
  }

  /** The signal of the task's calls (heartbeats, notes, result retries); aborted once the task ended. */
  private taskSignal(e: InFlight): AbortSignal {
    if (!e.cancelCtl) {
      e.cancelCtl = new AbortController();
      if (e.ended) e.cancelCtl.abort(TASK_SETTLED);
    }
    return e.cancelCtl.signal;
  }

  /** No more calls for this task: aborts the ones in flight (heartbeat, notes, result retry wait). */
  private endTask(e: InFlight): void {
    if (e.ended) return;
    e.ended = true;
    e.cancelCtl?.abort(TASK_SETTLED);
  }

  private loseLease(e: InFlight, reason: string, cause?: unknown): void {
    if (e.lost || e.finished || e.detached) return;
    e.lost = true;
    this.endTask(e);
    this.hbDue.delete(e);
    this.handlerCtl(e).abort(new LeaseLostError(e.task.id, reason, cause === undefined ? undefined : { cause }));
    log(this.logger, 'warn', 'codeq worker: lease lost', { taskId: e.task.id, reason });
    this.emit({ type: 'lease-lost', taskId: e.task.id, command: e.task.command, attempt: e.task.attempts, reason });
  }

  /**
   * The server said the task was cancelled (409 CANCELLED on a heartbeat or the result): abort the
   * handler with TaskCancelledError and record nothing more (the task already ended CANCELLED).
   */
  private cancelled(e: InFlight, cause: unknown): void {
    if (e.lost || e.detached) return;
    e.lost = true;
    this.hbDue.delete(e);
    this.endTask(e);
    if (!e.finished) this.handlerCtl(e).abort(new TaskCancelledError(e.task.id, { cause }));
    log(this.logger, 'info', 'codeq worker: task cancelled', { taskId: e.task.id });
    this.emit({ type: 'cancelled', taskId: e.task.id, command: e.task.command, attempt: e.task.attempts, durationMs: this.now() - e.started });
  }

  private async sendHeartbeat(e: InFlight, extendSeconds: number | undefined, rethrow: boolean): Promise<void> {
    const t0 = this.now();
    try {
      await this.transport.heartbeat(
        e.task.id,
        { ...(extendSeconds ? { extendSeconds } : {}), ...(e.leaseId ? { leaseId: e.leaseId } : {}) },
        { signal: this.taskSignal(e), timeoutMs: Math.max(1000, Math.min(10_000, Math.floor(e.leaseMs / 3))) },
      );
      const ms = extendSeconds ? extendSeconds * 1000 : e.leaseMs;
      // From when the heartbeat was sent (a lower bound of the server's new lease end), as a
      // duration: the server's absolute leaseUntil is not compared with the local clock.
      e.leaseDeadline = t0 + ms;
      this.armWatchdog(e);
    } catch (err) {
      if (isAbortError(err) || e.ended) {
        if (rethrow) throw err;
        return;
      }
      if (CodeqError.is(err) && err.code === 'CANCELLED') this.cancelled(e, err);
      else if (isLeaseLost(err)) this.loseLease(e, (err as CodeqError).message, err);
      else {
        const ce = toCodeqError(err, this.transport.target);
        log(this.logger, 'debug', 'codeq worker: heartbeat failed', { taskId: e.task.id, code: ce.code, error: ce.message });
        this.emit({ type: 'error', phase: 'heartbeat', error: ce, taskId: e.task.id, command: e.task.command });
        if (isMissingScope(ce)) this.fatal(ce); // as on the worker stream
      }
      if (rethrow) throw err;
    }
  }

  private heartbeatInterval(e: InFlight): number {
    return this.heartbeatIntervalMs ?? Math.max(200, Math.floor(e.leaseMs / 3));
  }

  /**
   * Heartbeats of all tasks run on one timer (not one sleeping timer per task): every task has
   * its due time, the timer fires at the earliest, and each tick sends the heartbeats of every
   * task due within the next tenth of its interval, so tasks claimed together are renewed
   * together (one ResultBatch-like burst on the stream, not a trickle). The next heartbeat of a
   * task is due one interval after its last one was answered.
   */
  private scheduleHeartbeat(e: InFlight, at: number): void {
    this.hbDue.delete(e); // keep the map in due order (intervals are equal, so appending keeps it sorted)
    this.hbDue.set(e, at);
    if (at < this.hbTimerAt) this.armHeartbeats(at);
  }

  private armHeartbeats(at: number): void {
    clearTimeout(this.hbTimer);
    this.hbTimerAt = at;
    this.hbTimer = setTimeout(() => this.heartbeatTick(), Math.max(0, at - this.now()));
  }

  private heartbeatTick(): void {
    this.hbTimer = undefined;
    this.hbTimerAt = Infinity;
    const now = this.now();
    let next = Infinity;
    for (const [e, at] of this.hbDue) {
      if (e.finished || e.lost || e.detached) {
        this.hbDue.delete(e);
        continue;
      }
      if (at > now + this.heartbeatInterval(e) / 10) {
        next = Math.min(next, at);
        continue;
      }
      this.hbDue.delete(e);
      e.heartbeating = this.sendHeartbeat(e, this.opts.leaseSeconds, false)
        .catch(() => undefined)
        .finally(() => {
          e.heartbeating = undefined;
          if (!e.finished && !e.lost && !e.detached) this.scheduleHeartbeat(e, this.now() + this.heartbeatInterval(e));
        });
    }
    if (next < Infinity) this.armHeartbeats(next);
  }

  /**
   * Records the outcome, retrying transient failures up to `resultRetry` (attempts and total
   * time); then gives up: heartbeats stop and the task is redelivered when its lease expires.
   */
  private async settle(e: InFlight, first: Outcome): Promise<void> {
    let outcome = first;
    const { task } = e;
    const lease = e.leaseId ? { leaseId: e.leaseId } : {};
    const base = { taskId: task.id, command: task.command, attempt: task.attempts };
    const firstTry = this.now();
    for (let attempt = 1; ; attempt++) {
      if (e.lost || e.detached) return;
      // The first try goes without a signal (no AbortController per task); a task ended while it
      // is on the wire (lease lost, cancelled, detached) ignores its answer, as an abort would.
      const opts = e.cancelCtl ? { signal: e.cancelCtl.signal } : NO_CALL_OPTS;
      try {
        switch (outcome.kind) {
          case 'complete':
            await this.transport.submitResult(task.id, { status: 'COMPLETED', result: outcome.result, ...lease }, opts);
            if (e.ended) return;
            if (this.observed()) this.emit({ type: 'completed', ...base, durationMs: this.now() - e.started });
            return;
          case 'fail':
            await this.transport.submitResult(task.id, { status: 'FAILED', error: outcome.message || 'failed', ...lease }, opts);
            if (e.ended) return;
            this.emit({ type: 'failed', ...base, durationMs: this.now() - e.started, error: outcome.message || 'failed' });
            return;
          case 'nack': {
            const n = await this.transport.nack(task.id, { reason: outcome.reason, ...(outcome.delaySeconds !== undefined ? { delaySeconds: outcome.delaySeconds } : {}), ...lease }, opts);
            if (e.ended) return;
            this.emit({ type: 'nacked', ...base, durationMs: this.now() - e.started, reason: outcome.reason, status: n.status, delaySeconds: n.delaySeconds });
            return;
          }
          case 'abandon':
            await this.transport.abandon(task.id, lease, opts);
            if (e.ended) return;
            this.emit({ type: 'abandoned', ...base, reason: outcome.reason });
            return;
        }
      } catch (raw) {
        if (isAbortError(raw) || e.ended) return;
        if (outcome.kind === 'complete' && !CodeqError.is(raw)) {
          // A result the SDK cannot serialise (BigInt, circular structure) would fail every retry.
          const why = unserialisable(outcome.result);
          if (why !== undefined) {
            const message = `result not serialisable: ${why}`;
            log(this.logger, 'warn', 'codeq worker: handler result is not serialisable, recording FAILED', { taskId: task.id, error: why });
            this.emit({ type: 'error', phase: 'result', error: new CodeqError('VALIDATION_FAILED', message, { taskId: task.id }, { cause: raw }), taskId: task.id, command: task.command });
            outcome = { kind: 'fail', message };
            continue;
          }
        }
        const err = toCodeqError(raw, this.transport.target);
        if (err.code === 'CANCELLED') {
          this.cancelled(e, err);
          return;
        }
        if (isLeaseLost(err)) {
          // A nack/abandon whose first answer was lost already released the lease.
          if (attempt > 1 && (outcome.kind === 'nack' || outcome.kind === 'abandon')) {
            if (outcome.kind === 'nack') this.emit({ type: 'nacked', ...base, durationMs: this.now() - e.started, reason: outcome.reason, status: 'requeued', delaySeconds: 0 });
            else this.emit({ type: 'abandoned', ...base, reason: outcome.reason });
            return;
          }
          this.loseLease(e, err.message, err);
          return;
        }
        if (outcome.kind === 'complete' && REJECTED_RESULT.has(err.code)) {
          this.emit({ type: 'error', phase: 'result', error: err, taskId: task.id, command: task.command });
          outcome = { kind: 'fail', message: `result rejected by the server: ${err.message}` };
          continue;
        }
        if (err.spec.retryable || err.code === 'INTERNAL') {
          log(this.logger, 'debug', 'codeq worker: result submission failed, retrying', { taskId: task.id, code: err.code, error: err.message });
          if (attempt === 1) this.emit({ type: 'error', phase: 'result', error: err, taskId: task.id, command: task.command });
          const wait = backoffMs(this.reconnect, attempt);
          if (attempt >= this.resultMaxAttempts || this.now() + wait - firstTry > this.resultMaxMs) {
            this.giveUp(e, outcome.kind, attempt, err);
            return;
          }
          try {
            await sleep(wait, this.taskSignal(e));
          } catch {
            return;
          }
          continue;
        }
        this.emit({ type: 'error', phase: 'result', error: err, taskId: task.id, command: task.command });
        // FORBIDDEN (`missing scope`): the token can never record an outcome; stop as the worker
        // stream does (its ServerError{PermissionDenied} fails every call) instead of claiming on.
        if (isMissingScope(err)) this.fatal(err);
        return;
      }
    }
  }

  /** Result retries exhausted: stop renewing the lease (the server redelivers the task when it expires). */
  private giveUp(e: InFlight, outcome: Outcome['kind'], attempts: number, err: CodeqError): void {
    this.hbDue.delete(e);
    this.endTask(e);
    log(this.logger, 'error', 'codeq worker: giving up recording the outcome; the task is redelivered when its lease expires', { taskId: e.task.id, outcome, attempts, code: err.code, error: err.message });
    this.emit({ type: 'result-gave-up', taskId: e.task.id, command: e.task.command, attempt: e.task.attempts, outcome, attempts, error: err.message });
  }

  // ---- shutdown -----------------------------------------------------------------------------

  private hardStop(): void {
    if (this.finished) return;
    if (this.inflight.size === 0) return this.finish();
    log(this.logger, 'warn', 'codeq worker: drain deadline passed, aborting handlers', { inFlight: this.inflight.size });
    for (const e of this.inflight.values()) {
      e.hardStopped = true;
      this.handlerCtl(e).abort(new WorkerStoppedError());
    }
    this.graceTimer = setTimeout(() => void this.detachAll(), this.abortGraceMs);
  }

  /** Handlers that ignore their signal: give their tasks back and stop waiting for them. */
  private async detachAll(): Promise<void> {
    const left = [...this.inflight.values()].filter((e) => !e.finished);
    this.inflight.clear();
    await Promise.allSettled(
      left.map(async (e) => {
        e.detached = true;
        this.endTask(e);
        if (e.lost) return;
        try {
          await this.transport.abandon(e.task.id, e.leaseId ? { leaseId: e.leaseId } : {}, { timeoutMs: 2000 });
          this.emit({ type: 'abandoned', taskId: e.task.id, command: e.task.command, attempt: e.task.attempts, reason: 'handler did not stop after abort' });
        } catch (err) {
          this.emit({ type: 'error', phase: 'result', error: toCodeqError(err, this.transport.target), taskId: e.task.id, command: e.task.command });
        }
      }),
    );
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.state = 'stopped';
    clearTimeout(this.hardTimer);
    clearTimeout(this.graceTimer);
    clearTimeout(this.hbTimer);
    clearTimeout(this.wdTimer);
    this.hbDue.clear();
    if (!this.stopCtl.signal.aborted) this.stopCtl.abort(new WorkerStoppedError());
    process.off('SIGTERM', this.onSignal);
    process.off('SIGINT', this.onSignal);
    this.opts.signal?.removeEventListener('abort', this.onUserAbort);
    log(this.logger, 'info', 'codeq worker: stopped');
    this.emit({ type: 'stopped' });
    const close = this.ownsTransport ? this.transport.close() : Promise.resolve();
    void close.finally(() => {
      if (this.fatalError) this.rejectDone(this.fatalError);
      else this.resolveDone();
    });
  }

  on<K extends WorkerEventName>(event: K, listener: WorkerListener<K>): Worker {
    return this.addListener(event, listener, false);
  }

  once<K extends WorkerEventName>(event: K, listener: WorkerListener<K>): Worker {
    return this.addListener(event, listener, true);
  }

  off<K extends WorkerEventName>(event: K, listener: WorkerListener<K>): Worker {
    const list = this.listeners.get(event);
    const i = list ? list.findIndex((l) => l.fn === listener) : -1;
    if (list && i >= 0) list.splice(i, 1);
    return this;
  }

  private addListener<K extends WorkerEventName>(event: K, listener: WorkerListener<K>, once: boolean): Worker {
    if (typeof listener !== 'function') throw new TypeError(`listener of '${event}' must be a function`);
    const list = this.listeners.get(event) ?? [];
    list.push({ fn: listener, once });
    this.listeners.set(event, list);
    return this;
  }

  /** Whether anyone receives events (hot paths skip building them otherwise). */
  private observed(): boolean {
    return this.opts.onEvent !== undefined || this.listeners.size > 0;
  }

  private emit(event: WorkerEvent): void {
    if (this.opts.onEvent) {
      try {
        this.opts.onEvent(event);
      } catch (err) {
        log(this.logger, 'error', 'codeq worker: onEvent threw', { error: errorMessage(err) });
      }
    }
    if (this.listeners.size === 0) return;
    this.dispatch(event.type, event);
    if (event.type === 'nacked') {
      if (event.status === 'requeued') this.dispatch('retrying', event);
      else {
        const { taskId, command, attempt, durationMs, reason } = event;
        this.dispatch('failed', { type: 'failed', taskId, command, attempt, durationMs, error: reason, deadLettered: true });
      }
    }
  }

  /** Calls the listeners of `name`; a throwing (or rejecting) listener is logged and skipped. */
  private dispatch(name: WorkerEventName, event: WorkerEventMap[WorkerEventName]): void {
    const list = this.listeners.get(name);
    if (!list || list.length === 0) return;
    for (const l of [...list]) {
      if (l.once) {
        const i = list.indexOf(l);
        if (i >= 0) list.splice(i, 1);
      }
      try {
        const r = (l.fn as (e: unknown) => unknown)(event);
        if (r instanceof Promise) r.catch((err: unknown) => log(this.logger, 'error', `codeq worker: '${name}' listener rejected`, { error: errorMessage(err) }));
      } catch (err) {
        log(this.logger, 'error', `codeq worker: '${name}' listener threw`, { error: errorMessage(err) });
      }
    }
  }
}

/**
 * Creates a worker: on the gRPC worker stream when `grpcAddress` is given (tasks are pushed as
 * slots free up), else on HTTP long-polls. Call `start()`; `stop()` drains; `done` settles when
 * stopped.
 *
 * ```ts
 * const worker = createWorker({
 *   grpcAddress: 'localhost:9091', token: process.env.CODEQ_TOKEN!,
 *   concurrency: 4, // commands default to the handlers' keys
 *   handlers: {
 *     'email.send': async (data, ctx) => {
 *       await sendEmail(data, { signal: ctx.signal });
 *       return { sent: true };
 *     },
 *   },
 *   handleSignals: true,
 * }).start();
 * await worker.done;
 * ```
 */
export function createWorker<C extends CommandName>(opts: WorkerOptions<C>): Worker {
  return new ClaimLoopWorker(opts);
}
