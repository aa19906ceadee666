/**
 * The producer-stream transport (`/producerpb.ProducerStream/Stream`, grpc-streams.md §5): creates
 * go over one long-lived stream, correlated with their acks by `seq`; reads (`getTask`,
 * `getResult`) and admin calls go to an HTTP transport when one is configured.
 */
import { CodeqError, producerpb } from '@codeq/proto';
import { abortReason, toCodeqError } from './errors.js';
import { grpcTransportSettings, MAX_STREAM_MESSAGE_BYTES, decodeAckError, type GrpcConnectionOptions } from './grpc.js';
import { log, type Logger } from './logger.js';
import { StreamConnection, type StreamConn } from './stream-connection.js';
import type { LogsQuery, BatchCreateOutcome, CallOptions, CleanupInput, CreateTaskInput, ProducerTransport, Transport } from './transport.js';
import { parsePayload, taskFromWire, type CleanupOutcome, type QueueStats, type Task, type TaskLogLine, type TaskResult } from './types.js';

/** Options of {@link GrpcProducerTransport}. */
export interface GrpcProducerTransportOptions extends GrpcConnectionOptions {
  /** HTTP API for reads and admin calls (`getTask`, `getResult`, …); the transport owns and closes it. */
  baseUrl?: string;
  /** Or an HTTP transport to delegate reads to (not closed by this transport). */
  http?: Transport;
  /** Most creates sent in one `CreateTaskBatch`. @default 500 */
  maxBatch?: number;
}

/** The producer session's identity from its HelloAck. */
export interface ProducerSessionInfo {
  readonly tenantId: string;
  readonly subject: string;
}

type Conn = StreamConn<producerpb.ProducerEvent, producerpb.ServerEvent, ProducerSessionInfo>;

/** One create waiting for its ack: an item of a {@link CreateCall} (no closures per item). */
interface PendingCreate {
  readonly call: CreateCall;
  readonly index: number;
  readonly input: CreateTaskInput;
  readonly text: string;
}

/** One `create()` call: its items' outcomes, settled once every ack arrived (or on a failure). */
class CreateCall {
  readonly results: BatchCreateOutcome[];
  readonly seqs: string[] = [];
  left: number;
  done = false;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;

  constructor(
    readonly conn: Conn,
    readonly now: number,
    size: number,
    private readonly signal: AbortSignal | undefined,
    private readonly pending: Map<string, PendingCreate>,
    private readonly resolve: (r: BatchCreateOutcome[]) => void,
    private readonly reject: (e: Error) => void,
  ) {
    this.results = new Array<BatchCreateOutcome>(size);
    this.left = size;
  }

  get epoch(): number {
    return this.conn.epoch;
  }

  /** Item `i` has its outcome; the call resolves with the last one. */
  settle(i: number, outcome: BatchCreateOutcome): void {
    this.results[i] = outcome;
    if (--this.left === 0) this.finish();
  }

  finish(err?: Error): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    if (this.onAbort) this.signal?.removeEventListener('abort', this.onAbort);
    for (const s of this.seqs) this.pending.delete(s);
    if (err) this.reject(err);
    else this.resolve(this.results);
  }
}

interface Queued {
  epoch: number;
  create: producerpb.CreateTask;
  bytes: number;
}

/** The wire form of one create. */
function toProto(input: CreateTaskInput, seq: string, payload: Buffer): producerpb.CreateTask {
  const runAt = input.runAt !== undefined ? new Date(input.runAt) : undefined;
  if (runAt !== undefined && Number.isNaN(runAt.getTime())) throw new CodeqError('VALIDATION_FAILED', "invalid 'runAt' (use RFC3339)");
  return {
    seq,
    command: input.command,
    payload,
    priority: input.priority ?? 0,
    webhook: input.webhook ?? '',
    maxAttempts: input.maxAttempts ?? 0,
    idempotencyKey: input.idempotencyKey ?? '',
    runAt,
    delaySeconds: input.delaySeconds ?? 0,
    traceParent: input.traceParent ?? '',
    traceState: input.traceState ?? '',
  };
}

/**
 * The stored task of a CreateAck (`CreateAck.task`, a codeQ-TS addition): the same fields
 * `GET /tasks/:id` reports right after the create.
 */
export function taskFromStored(t: producerpb.StoredTask): Task {
  return taskFromWire(t, t.createdAt, t.updatedAt, { status: 'PENDING' });
}

/**
 * The task a successful create stands for. A codeQ-TS server sends the stored task in the ack
 * (`CreateAck.task`, see {@link taskFromStored}); an upstream server sends only the id, and then
 * the other fields are the submitted values (`status` PENDING, `attempts` 0, `maxAttempts` 0
 * when the server default applies, `payload` as sent): read it back with `getTask` for the
 * stored state.
 */
export function taskFromAck(id: string, input: CreateTaskInput, payloadText: string, info: ProducerSessionInfo | undefined, now: number): Task {
  const at = new Date(now).toISOString();
  const visibleAt = input.runAt !== undefined ? Date.parse(input.runAt) : input.delaySeconds ? now + input.delaySeconds * 1000 : now;
  // One fixed-shape literal (this runs once per submitted task).
  const data = parsePayload(payloadText);
  const task: { -readonly [K in keyof Task]: Task[K] } = {
    id,
    command: input.command,
    payload: payloadText,
    data,
    payloadJson: data,
    priority: Math.min(9, Math.max(0, input.priority ?? 0)),
    status: 'PENDING',
    lastKnownLocation: visibleAt > now ? 'DELAYED_ZSET' : 'PENDING_LIST',
    attempts: 0,
    maxAttempts: input.maxAttempts ?? 0,
    createdAt: at,
    updatedAt: at,
  };
  if (input.webhook) task.webhook = input.webhook;
  if (info?.tenantId) task.tenantId = info.tenantId;
  return task;
}

/**
 * Creates tasks over the producer stream. One stream is opened on first use and reopened on the
 * next call after it broke; creates issued in the same tick go out as one `CreateTaskBatch`.
 * A create whose stream broke before its ack rejects with `UNAVAILABLE` (`details.network`):
 * the SDK retries it with the same idempotency key, so a create the server had committed is
 * answered with the existing task instead of a duplicate. The transport itself never retries.
 *
 * It is a {@link ProducerTransport}: the worker's calls (claims, results) are the worker
 * stream's (`GrpcWorkerTransport` in `@codeq/sdk-worker`), not forwarded anywhere.
 */
export class GrpcProducerTransport implements ProducerTransport {
  readonly target: string;
  private readonly timeoutMs: number;
  private readonly maxBatch: number;
  private readonly logger: Logger | undefined;
  private readonly http: Transport | undefined;
  private readonly ownsHttp: boolean;
  private readonly stream: StreamConnection<producerpb.ProducerEvent, producerpb.ServerEvent, ProducerSessionInfo>;
  private seq = 0;
  private readonly pending = new Map<string, PendingCreate>();
  private queue: Queued[] = [];
  private flushScheduled = false;

  constructor(opts: GrpcProducerTransportOptions) {
    const s = grpcTransportSettings(opts);
    this.target = s.target;
    this.timeoutMs = s.timeoutMs;
    this.maxBatch = Math.max(1, Math.floor(opts.maxBatch ?? 500));
    this.logger = s.logger;
    this.ownsHttp = s.ownsHttp;
    this.http = s.http;
    this.stream = new StreamConnection<producerpb.ProducerEvent, producerpb.ServerEvent, ProducerSessionInfo>(s, {
      kind: 'producer',
      newClient: (address, credentials, options) => new producerpb.ProducerStreamClient(address, credentials, options),
      hello: { event: { $case: 'hello', hello: { token: s.token } } },
      info: (ack) => ({ tenantId: ack.tenantId, subject: ack.subject }),
      onEvent: (epoch, ev) => this.onEvent(epoch, ev),
      onClose: (epoch, err) => this.onClose(epoch, err),
    });
  }

  /** Tenant and subject of the open session (undefined before the first connect). */
  get session(): ProducerSessionInfo | undefined {
    return this.stream.conn?.info;
  }

  /** Opens the stream now (it is otherwise opened by the first create); rejects like a create would. */
  async connect(opts: CallOptions = {}): Promise<ProducerSessionInfo> {
    return (await this.open(opts.signal)).info;
  }

  private open(signal?: AbortSignal): Promise<Conn> {
    return this.stream.open(signal);
  }

  private onEvent(epoch: number, ev: producerpb.ServerEvent): void {
    const e = ev.event;
    switch (e?.$case) {
      case 'createAck':
        return this.ack(e.createAck);
      case 'createAckBatch':
        for (const a of e.createAckBatch.acks) this.ack(a);
        return;
      case 'error':
        // Not tied to a create (second Hello, unknown event): nothing to fail.
        log(this.logger, 'warn', 'codeq: producer stream error event', { code: e.error.code, error: e.error.message, epoch });
        return;
      case 'helloAck':
      case undefined:
        return;
    }
  }

  private ack(a: producerpb.CreateAck): void {
    const p = this.pending.get(a.seq);
    if (!p) return log(this.logger, 'debug', 'codeq: ack for unknown seq', { seq: a.seq });
    this.pending.delete(a.seq);
    const call = p.call;
    call.settle(p.index, a.ok ? { task: a.task ? taskFromStored(a.task) : taskFromAck(a.taskId, p.input, p.text, call.conn.info, call.now) } : { error: decodeAckError(a.errorMessage, a.errorCode) });
  }

  /** Session `epoch` ended: its creates without an ack fail (the SDK retries them with their idempotency keys). */
  private onClose(epoch: number, why: CodeqError): void {
    for (const [seq, p] of this.pending) {
      if (p.call.epoch !== epoch) continue;
      this.pending.delete(seq);
      p.call.finish(why);
    }
  }

  private enqueue(q: Queued): void {
    this.queue.push(q);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Sends what this tick queued: one CreateTask, or CreateTaskBatches of at most maxBatch / ~4 MiB. */
  private flush(): void {
    this.flushScheduled = false;
    const conn = this.stream.conn;
    const items = this.queue.filter((q) => conn && q.epoch === conn.epoch); // others were failed by onClose
    this.queue = [];
    if (!conn || !items.length) return;
    let batch: producerpb.CreateTask[] = [];
    let bytes = 0;
    const send = (): void => {
      if (batch.length === 1) conn.session.write({ event: { $case: 'create', create: batch[0]! } });
      else if (batch.length > 1) conn.session.write({ event: { $case: 'createBatch', createBatch: { tasks: batch } } });
      batch = [];
      bytes = 0;
    };
    for (const q of items) {
      if (batch.length && (batch.length >= this.maxBatch || bytes + q.bytes > MAX_STREAM_MESSAGE_BYTES)) send();
      batch.push(q.create);
      bytes += q.bytes;
    }
    send();
  }

  /** Sends the creates and resolves with one outcome per input once every ack arrived. */
  private async create(inputs: readonly CreateTaskInput[], opts: CallOptions = {}): Promise<BatchCreateOutcome[]> {
    const prepared = inputs.map((input) => {
      const text = JSON.stringify(input.payload === undefined ? null : input.payload);
      const payload = Buffer.from(text, 'utf8');
      if (payload.length + input.command.length + 512 > MAX_STREAM_MESSAGE_BYTES) throw new CodeqError('PAYLOAD_TOO_LARGE', 'request body too large', { bytes: payload.length });
      return { input, text, payload };
    });
    if (!prepared.length) return [];
    const conn = await this.open(opts.signal);
    if (this.stream.conn !== conn) throw new CodeqError('UNAVAILABLE', `the producer stream to ${this.target} closed`, { network: true, target: this.target });
    const signal = opts.signal;
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise<BatchCreateOutcome[]>((resolve, reject) => {
      const call = new CreateCall(conn, Date.now(), prepared.length, signal, this.pending, resolve, reject);
      call.timer = setTimeout(() => {
        call.finish(new CodeqError('UNAVAILABLE', `no answer from ${this.target} within ${timeoutMs} ms`, { timeout: true, target: this.target }));
        this.stream.recycle(conn, 'create ack timeout', timeoutMs);
      }, timeoutMs);
      if (signal) {
        call.onAbort = () => call.finish(abortReason(signal));
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      for (let i = 0; i < prepared.length; i++) {
        const { input, text, payload } = prepared[i]!;
        const seq = String(++this.seq);
        let create: producerpb.CreateTask;
        try {
          create = toProto(input, seq, payload);
        } catch (e) {
          call.settle(i, { error: toCodeqError(e, this.target) });
          continue;
        }
        call.seqs.push(seq);
        this.pending.set(seq, { call, index: i, input, text });
        this.enqueue({ epoch: conn.epoch, create, bytes: payload.length + input.command.length + (input.idempotencyKey?.length ?? 0) + 64 });
      }
    });
  }

  async createTask(input: CreateTaskInput, opts?: CallOptions): Promise<Task> {
    const [r] = await this.create([input], opts);
    if (!r) throw new CodeqError('INTERNAL', 'no outcome for the create');
    if (r.error) throw r.error;
    return r.task;
  }

  createTasks(inputs: readonly CreateTaskInput[], opts?: CallOptions): Promise<BatchCreateOutcome[]> {
    return this.create(inputs, opts);
  }

  /** The HTTP API transport of reads and admin calls (the operator API uses it); throws naming `op` when none. */
  httpFor(op: string): Transport {
    return this.needHttp(op);
  }

  private needHttp(op: string): Transport {
    if (!this.http) throw new CodeqError('VALIDATION_FAILED', `${op} is not available on the producer stream: pass baseUrl (the HTTP API) as well`);
    return this.http;
  }

  async getTask(id: string, opts?: CallOptions): Promise<Task> {
    return this.needHttp('getTask').getTask(id, opts);
  }
  async getLogs(id: string, query?: LogsQuery, opts?: CallOptions): Promise<TaskLogLine[]> {
    const http = this.needHttp('getLogs');
    if (!http.getLogs) throw new CodeqError('VALIDATION_FAILED', 'getLogs is not supported by this transport');
    return http.getLogs(id, query, opts);
  }
  async getResult(id: string, waitSeconds?: number, opts?: CallOptions): Promise<TaskResult> {
    return this.needHttp('getResult').getResult(id, waitSeconds, opts);
  }
  async listQueues(opts?: CallOptions): Promise<Record<string, number>> {
    return this.needHttp('listQueues').listQueues(opts);
  }
  async queueStats(command: string, opts?: CallOptions): Promise<QueueStats> {
    return this.needHttp('queueStats').queueStats(command, opts);
  }
  async cleanup(input?: CleanupInput, opts?: CallOptions): Promise<CleanupOutcome> {
    return this.needHttp('cleanup').cleanup(input, opts);
  }

  /**
   * Half-closes the stream so the server answers the creates in flight, waits for those acks
   * (at most `timeoutMs`), then releases the channel. Later calls reject with `UNAVAILABLE`.
   */
  async close(): Promise<void> {
    if (this.stream.closed) return;
    await this.stream.close(() => this.flush());
    if (this.ownsHttp) await this.http?.close();
  }
}
