/**
 * The worker-stream transport (`/workerpb.WorkerStream/Stream`, grpc-streams.md §4): claims are
 * `Ready` credits and tasks are pushed; heartbeats, nacks, abandons and results travel on the same
 * stream with the lease id, and their acks are matched by task id.
 */
import { CodeqError, workerpb } from '@codeq/proto';
import {
  StreamConnection,
  grpcTransportSettings,
  abortReason,
  decodeAckError,
  decodeServerError,
  log,
  taskFromWire,
  type CallOptions,
  type ClaimInput,
  type GrpcConnectionOptions,
  type AppendLogsInput,
  type HeartbeatInput,
  type Logger,
  type ProgressInput,
  type NackInput,
  type NackOutcome,
  type ResultInput,
  type ResultRecord,
  type StreamConn,
  type Task,
  type WorkerTransport,
} from '@codeq/sdk-producer/transport';

/** Entries per ResultBatch message; the server's limit is 1,000. */
const MAX_RESULT_BATCH = 500;

/** Options of {@link GrpcWorkerTransport}. */
export interface GrpcWorkerTransportOptions extends GrpcConnectionOptions {
  /** Sent in Hello. codeQ-TS servers use the token subject as the lease owner whatever is sent. */
  workerId?: string;
  /** HTTP API for the one worker call the stream does not carry (results with artifacts); owned and closed by this transport. */
  baseUrl?: string;
  /** Or an HTTP transport to send those on (not closed by this transport). */
  http?: WorkerTransport;
  /**
   * Consider outstanding Readys lost after this long without a task, and ask again. Only for
   * upstream (Go) servers, which drop a Ready silently after ≈30 s (use 35000 there); codeQ-TS
   * servers keep a Ready until it is answered, so re-asking would only over-grant.
   * @default 0 (off)
   */
  readyTimeoutMs?: number;
}

/** The worker session's identity from its HelloAck. */
export interface WorkerSessionInfo {
  readonly workerId: string;
  readonly tenantId: string;
}

type Conn = StreamConn<workerpb.WorkerEvent, workerpb.ServerEvent, WorkerSessionInfo>;

interface ClaimWaiter {
  resolve(t: Task | null): void;
  reject(e: Error): void;
  /** When the claim resolves null (ms since epoch; Infinity: no limit). */
  deadline: number;
  /** The waiters of the same abort signal (see {@link GrpcWorkerTransport.abortGroup}). */
  group: Set<ClaimWaiter> | undefined;
}

type AckKind = 'result' | 'heartbeat' | 'nack' | 'abandon' | 'progress' | 'logs';
type AckOf<K extends AckKind> = K extends 'result'
  ? workerpb.ResultAck
  : K extends 'heartbeat'
    ? workerpb.HeartbeatAck
    : K extends 'nack'
      ? workerpb.NackAck
      : K extends 'progress' | 'logs'
        ? workerpb.NoteAck
        : workerpb.AbandonAck;

/** One call waiting for its ack, keyed by kind and task id (a chain when the same call is repeated). */
interface AckWaiter {
  readonly kind: AckKind;
  readonly taskId: string;
  readonly conn: Conn;
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly resolve: (ack: never) => void;
  readonly reject: (e: Error) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The next call of the same kind and task id, answered after this one. */
  next: AckWaiter | undefined;
}

type AckFields = { taskId: string; ok: boolean; errorMessage: string; errorCode: string };

/** Largest Ready.count the server accepts. */
const MAX_READY_COUNT = 1000;
/** How long a task pushed after its claim timed out waits for the next claim before it is given back. */
const SPARE_HOLD_MS = 1000;

/** A pushed task as the SDK's Task (same shape as an HTTP claim answer). */
export function taskFromProto(t: workerpb.Task): Task {
  return taskFromWire(t, t.createdAt ? t.createdAt.toISOString() : '', t.updatedAt ? t.updatedAt.toISOString() : '', WORKER_TASK_DEFAULTS);
}

const WORKER_TASK_DEFAULTS = { status: 'IN_PROGRESS', lastKnownLocation: 'INPROG_SET' } as const;

/**
 * Claims and settles tasks over the worker stream.
 *
 * - `claim()` waits for a pushed task. Every waiting claim is one credit: the transport keeps
 *   `Ready` credits outstanding for exactly the claims that wait (several at once as one
 *   `Ready{count}`), so the server never pushes more tasks than there are free slots. A task
 *   pushed when nobody waits any more is given back (abandoned: claimable again at once) —
 *   right away when the claim was aborted (e.g. by a worker's stop), after 1 s when it had
 *   timed out and no new claim took the task.
 * - Heartbeat/nack/abandon/result carry the lease id; results finished in the same tick go out
 *   as one `ResultBatch`. Rejections come back as CodeqErrors (`LEASE_NOT_HELD`, `NOT_OWNER`, …).
 * - The stream is opened on first use. When it breaks, every waiting call rejects with
 *   `UNAVAILABLE` (`details.network`) and the next call reopens it (the caller backs off); the
 *   first claim after a reopen resolves `null` so a claim loop can notice the reconnect. Leases
 *   belong to the worker identity, not to the stream, so tasks claimed before a reconnect can
 *   still be heartbeated and settled after it.
 *
 * One transport serves one set of commands and lease length (a claim loop's); claims with a
 * different set are rejected while Readys for the first one are outstanding.
 *
 * It is a {@link WorkerTransport}: the producer's calls (creates, reads, admin) belong to the
 * producer SDK's transports and are not forwarded from here.
 */
export class GrpcWorkerTransport implements WorkerTransport {
  readonly target: string;
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  private readonly http: WorkerTransport | undefined;
  private readonly ownsHttp: boolean;
  private readonly stream: StreamConnection<workerpb.WorkerEvent, workerpb.ServerEvent, WorkerSessionInfo>;
  /** A session broke; the next claim resolves null once the stream is back. */
  private reconnectNotice = false;
  private readonly waiters: ClaimWaiter[] = [];
  /** Counts of the Readys outstanding on the current session, oldest first. */
  private readys: number[] = [];
  private credits = 0;
  private ready: { key: string; commands: string[]; leaseSeconds: number } | undefined;
  private readyScheduled = false;
  private readonly readyTimeoutMs: number;
  private readyTimer: NodeJS.Timeout | undefined;
  /** Calls waiting for their ack, by kind, then task id. */
  private readonly acks: Record<AckKind, Map<string, AckWaiter>> = { result: new Map(), heartbeat: new Map(), nack: new Map(), abandon: new Map(), progress: new Map(), logs: new Map() };
  /**
   * One timer for every ack timeout and claim wait (not one per call): armed at the earliest
   * deadline; when it fires it settles what is due and re-arms at the next deadline.
   */
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepAt = Infinity;
  /** One abort listener per signal for all the claims waiting with it (a claim loop's slots share one). */
  private readonly abortGroups = new WeakMap<AbortSignal, Set<ClaimWaiter>>();
  private claimKey: { commands: readonly string[]; leaseSeconds: number } | undefined;
  /** Results queued this tick (on session `resultsEpoch`), sent as one ResultBatch. */
  private results: workerpb.Result[] = [];
  private resultsEpoch = 0;
  /** How the last waiting claim left without a task: aborted (the caller is gone) or timed out. */
  private lastLeave: 'abort' | 'timeout' | undefined;
  /** Tasks pushed after their claim timed out, held for the next claim for {@link SPARE_HOLD_MS}. */
  private readonly spares: Array<{ task: workerpb.Task; timer: NodeJS.Timeout }> = [];
  private resultsScheduled = false;

  constructor(opts: GrpcWorkerTransportOptions) {
    const s = grpcTransportSettings(opts);
    this.target = s.target;
    this.timeoutMs = s.timeoutMs;
    this.readyTimeoutMs = Math.max(0, opts.readyTimeoutMs ?? 0);
    this.logger = s.logger;
    this.ownsHttp = s.ownsHttp;
    this.http = s.http;
    this.stream = new StreamConnection<workerpb.WorkerEvent, workerpb.ServerEvent, WorkerSessionInfo>(s, {
      kind: 'worker',
      newClient: (address, credentials, options) => new workerpb.WorkerStreamClient(address, credentials, options),
      hello: { event: { $case: 'hello', hello: { token: s.token, workerId: opts.workerId ?? '' } } },
      info: (ack) => ({ workerId: ack.workerId, tenantId: ack.tenantId }),
      onEvent: (epoch, ev) => this.onEvent(epoch, ev),
      onClose: (epoch, err, current) => this.onClose(epoch, err, current),
      onOpen: () => this.scheduleReady(),
    });
  }

  /** The open session, if any. */
  private get conn(): Conn | null {
    return this.stream.conn;
  }

  private get closed(): boolean {
    return this.stream.closed;
  }

  /** Worker id and tenant of the open session (undefined before the first connect). */
  get session(): WorkerSessionInfo | undefined {
    return this.conn?.info;
  }

  /** Opens the stream now (it is otherwise opened by the first call). */
  async connect(opts: CallOptions = {}): Promise<WorkerSessionInfo> {
    return (await this.open(opts.signal)).info;
  }

  // ---- session ------------------------------------------------------------------------------

  private open(signal?: AbortSignal): Promise<Conn> {
    return this.stream.open(signal);
  }

  /** Session `epoch` ended: what waits on it fails; the next claim reopens (and resolves null once). */
  private onClose(epoch: number, why: CodeqError, current: boolean): void {
    if (!current) return;
    this.readys = [];
    this.credits = 0;
    if (!this.closed) this.reconnectNotice = true;
    for (const w of this.waiters.splice(0)) w.reject(why);
    this.failAcks(why, epoch);
  }

  /** Rejects the calls waiting for acks (of session `epoch` only, when given). */
  private failAcks(err: Error, epoch?: number): void {
    for (const map of Object.values(this.acks)) {
      for (const head of [...map.values()]) {
        for (let w: AckWaiter | undefined = head; w; w = w.next) {
          if (epoch === undefined || w.conn.epoch === epoch) this.leaveAck(w, err);
        }
      }
    }
  }

  private onEvent(epoch: number, ev: workerpb.ServerEvent): void {
    if (this.conn?.epoch !== epoch) return; // a late event of a session we already dropped
    const e = ev.event;
    switch (e?.$case) {
      case 'task':
        if (e.task.task) this.onTasks(epoch, [e.task.task]);
        else this.onTasks(epoch, []);
        return;
      case 'taskBatch':
        return this.onTasks(epoch, e.taskBatch.tasks);
      case 'resultAck':
        return this.settleAck('result', e.resultAck);
      case 'resultAckBatch':
        for (const a of e.resultAckBatch.acks) this.settleAck('result', a);
        return;
      case 'heartbeatAck':
        return this.settleAck('heartbeat', e.heartbeatAck);
      case 'nackAck':
        return this.settleAck('nack', e.nackAck);
      case 'abandonAck':
        return this.settleAck('abandon', e.abandonAck);
      case 'noteAck':
        if (e.noteAck.kind === 'progress' || e.noteAck.kind === 'logs') this.settleAck(e.noteAck.kind, e.noteAck);
        return;
      case 'error':
        return this.onServerError(e.error.code, e.error.message);
      case 'helloAck':
      case undefined:
        return;
    }
  }

  /** One Ready was answered: hand the tasks to waiting claims, give back what nobody waits for. */
  private onTasks(epoch: number, tasks: workerpb.Task[]): void {
    const count = this.readys.shift() ?? tasks.length;
    this.credits = Math.max(0, this.credits - count);
    this.armReadyTimer();
    for (const t of tasks) {
      const w = this.waiters[0]; // resolve() takes it off the list
      if (w) w.resolve(taskFromProto(t));
      else if (this.lastLeave === 'abort' || this.closed) this.giveBack(t);
      else {
        // The claim that asked for it timed out; a claim loop asks again at once, so hold it briefly.
        const spare = { task: t, timer: setTimeout(() => this.dropSpare(spare), SPARE_HOLD_MS) };
        this.spares.push(spare);
      }
    }
    this.scheduleReady();
  }

  private dropSpare(spare: { task: workerpb.Task; timer: NodeJS.Timeout }): void {
    clearTimeout(spare.timer);
    const i = this.spares.indexOf(spare);
    if (i < 0) return;
    this.spares.splice(i, 1);
    this.giveBack(spare.task);
  }

  /** A task pushed for a claim that left: abandon it, so it is claimable again at once. */
  private giveBack(t: workerpb.Task): void {
    const conn = this.conn;
    if (conn && conn.session.writable) {
      log(this.logger, 'debug', 'codeq: abandoning a task nobody waits for', { taskId: t.id });
      conn.session.write({ event: { $case: 'abandon', abandon: { taskId: t.id, leaseId: t.leaseId } } });
    } else {
      log(this.logger, 'warn', 'codeq: task pushed after the stream was closed; it returns to the queue when its lease expires', { taskId: t.id, leaseUntil: t.leaseUntil });
    }
  }

  private onServerError(code: string, message: string): void {
    const err = decodeServerError(code, message);
    log(this.logger, 'warn', 'codeq: worker stream error event', { code, error: message });
    switch (code) {
      case 'FailedPrecondition': // second Hello
        return;
      case 'InvalidArgument': {
        if (message === 'unknown-event') return; // an event this server does not know (progress, logs on upstream)
        // Any other InvalidArgument refused a Ready (lease over 7 days, an invalid command, too
        // many commands): the server registered nothing for it, and every waiting claim shares its
        // commands and lease, so they all fail as the same HTTP claim would (400 VALIDATION_FAILED).
        const count = this.readys.shift() ?? 0;
        this.credits = Math.max(0, this.credits - count);
        for (const w of this.waiters.splice(0)) w.reject(err);
        return;
      }
      case 'PermissionDenied': {
        // "event type not allowed" (a Ready) or "missing scope" (any event): which event it was is
        // not said, so fail everything and start over on a fresh stream (credits resynchronised).
        for (const w of this.waiters.splice(0)) w.reject(err);
        this.failAcks(err);
        if (this.conn) this.conn.session.cancel();
        return;
      }
      default: {
        // A claim failed on the server (Internal, ResourceExhausted, …): that Ready is used up.
        const count = this.readys.shift() ?? 0;
        this.credits = Math.max(0, this.credits - count);
        this.waiters[0]?.reject(err);
        this.scheduleReady(); // a Ready{count > 1} carried credits of other waiting claims too
        return;
      }
    }
  }

  private scheduleReady(): void {
    if (this.readyScheduled) return;
    this.readyScheduled = true;
    setImmediate(() => {
      this.readyScheduled = false;
      this.sendReady();
    });
  }

  /** Grants the credits waiting claims need beyond those already outstanding. */
  private sendReady(): void {
    const conn = this.conn;
    const r = this.ready;
    if (!conn || !r || this.closed || !conn.session.writable) return;
    let need = this.waiters.length - this.credits;
    while (need > 0) {
      const count = Math.min(need, MAX_READY_COUNT);
      // count 1 asks for a TaskAssignment, more for one TaskBatch of up to count tasks.
      conn.session.write({ event: { $case: 'ready', ready: { commands: r.commands, leaseSeconds: r.leaseSeconds, count } } });
      this.readys.push(count);
      this.credits += count;
      need -= count;
      this.armReadyTimer();
    }
  }

  /** With `readyTimeoutMs`: forget credits nothing answered for that long (upstream's silent give-up). */
  private armReadyTimer(): void {
    if (!this.readyTimeoutMs) return;
    clearTimeout(this.readyTimer);
    if (this.credits <= 0) return;
    const conn = this.conn;
    this.readyTimer = setTimeout(() => {
      if (!conn || this.conn !== conn || this.credits <= 0) return;
      log(this.logger, 'debug', 'codeq: Readys unanswered, asking again', { credits: this.credits, readyTimeoutMs: this.readyTimeoutMs });
      this.readys = [];
      this.credits = 0;
      this.sendReady();
    }, this.readyTimeoutMs);
    this.readyTimer.unref();
  }

  // ---- claims -------------------------------------------------------------------------------

  /**
   * Waits for a pushed task. Resolves `null` after `waitSeconds` (when > 0) without a task, and
   * once right after the stream was reopened. Rejects with the signal's reason when aborted.
   */
  async claim(input: ClaimInput, opts: CallOptions = {}): Promise<Task | null> {
    const leaseSeconds = input.leaseSeconds ?? 0;
    // A claim loop passes the same commands array every time: compare it by reference first.
    const k = this.claimKey;
    if (!k || k.commands !== input.commands || k.leaseSeconds !== leaseSeconds) {
      const commands = [...input.commands];
      const key = JSON.stringify([commands, leaseSeconds]);
      if (this.ready && this.ready.key !== key && (this.credits > 0 || this.waiters.length > 0)) {
        throw new CodeqError('VALIDATION_FAILED', 'a GrpcWorkerTransport claims one set of commands and lease length at a time');
      }
      this.ready = { key, commands, leaseSeconds };
      this.claimKey = { commands: input.commands, leaseSeconds };
    }
    this.lastLeave = undefined;
    const spare = this.spares.shift();
    if (spare) {
      clearTimeout(spare.timer);
      return taskFromProto(spare.task);
    }
    if (!this.conn || this.closed) await this.open(opts.signal);
    if (this.reconnectNotice) {
      this.reconnectNotice = false;
      return null;
    }
    const signal = opts.signal;
    if (signal?.aborted) throw abortReason(signal);
    const waitMs = input.waitSeconds !== undefined && input.waitSeconds > 0 ? input.waitSeconds * 1000 : 0;
    return new Promise<Task | null>((resolve, reject) => {
      const w: ClaimWaiter = {
        resolve: (t) => (this.leaveClaim(w), resolve(t)),
        reject: (e) => (this.leaveClaim(w), reject(e)),
        deadline: waitMs ? Date.now() + waitMs : Infinity,
        group: signal ? this.abortGroup(signal) : undefined,
      };
      w.group?.add(w);
      if (waitMs) this.armSweep(w.deadline);
      this.waiters.push(w);
      this.scheduleReady();
    });
  }

  private leaveClaim(w: ClaimWaiter): void {
    w.group?.delete(w);
    // Tasks go to the oldest waiter: it is usually the first.
    const i = this.waiters[0] === w ? 0 : this.waiters.indexOf(w);
    if (i === 0) this.waiters.shift();
    else if (i > 0) this.waiters.splice(i, 1);
  }

  /**
   * The claims waiting with `signal`, behind one abort listener that stays until the signal
   * aborts (a worker's claims share its stop signal: no listener added and removed per claim).
   */
  private abortGroup(signal: AbortSignal): Set<ClaimWaiter> {
    let group = this.abortGroups.get(signal);
    if (!group) {
      const g = new Set<ClaimWaiter>();
      group = g;
      this.abortGroups.set(signal, g);
      signal.addEventListener(
        'abort',
        () => {
          const reason = abortReason(signal);
          for (const w of [...g]) {
            this.lastLeave = 'abort';
            w.reject(reason);
          }
        },
        { once: true },
      );
    }
    return group;
  }

  // ---- acknowledged events ------------------------------------------------------------------

  private settleAck(kind: AckKind, a: AckFields): void {
    const w = this.acks[kind].get(a.taskId);
    if (!w) {
      log(this.logger, 'debug', 'codeq: ack nobody waits for', { kind, taskId: a.taskId, ok: a.ok, error: a.errorMessage });
      return;
    }
    this.leaveAck(w, a.ok ? undefined : decodeAckError(a.errorMessage, a.errorCode, { taskId: a.taskId }));
    if (a.ok) w.resolve(a as never);
  }

  /** Takes `w` out of the table (and off its signal); rejects it with `err` when given. */
  private leaveAck(w: AckWaiter, err: Error | undefined): void {
    const map = this.acks[w.kind];
    const head = map.get(w.taskId);
    if (head === w) {
      if (w.next) map.set(w.taskId, w.next);
      else map.delete(w.taskId);
    } else {
      for (let p = head; p; p = p.next) {
        if (p.next === w) {
          p.next = w.next;
          break;
        }
      }
    }
    w.next = undefined;
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
    w.onAbort = undefined;
    if (err) w.reject(err);
  }

  /**
   * Sends one event and resolves with its ack (or rejects with the ack's CodeqError). No
   * promise hop when the session is open; the ack timeout runs on the shared sweep timer.
   */
  private request<K extends AckKind>(kind: K, taskId: string, ev: workerpb.WorkerEvent | workerpb.Result, opts: CallOptions = {}): Promise<AckOf<K>> {
    const conn = this.conn;
    if (conn && !this.closed) return this.send(kind, taskId, ev, opts, conn);
    return this.open(opts.signal).then((c) => {
      if (this.conn !== c) throw new CodeqError('UNAVAILABLE', `the worker stream to ${this.target} closed`, { network: true, target: this.target });
      return this.send(kind, taskId, ev, opts, c);
    });
  }

  private send<K extends AckKind>(kind: K, taskId: string, ev: workerpb.WorkerEvent | workerpb.Result, opts: CallOptions, conn: Conn): Promise<AckOf<K>> {
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise<AckOf<K>>((resolve, reject) => {
      const w: AckWaiter = { kind, taskId, conn, deadline: Date.now() + timeoutMs, timeoutMs, resolve: resolve, reject, signal, onAbort: undefined, next: undefined };
      if (signal) {
        w.onAbort = () => this.leaveAck(w, abortReason(signal));
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      const map = this.acks[kind];
      const head = map.get(taskId);
      if (!head) map.set(taskId, w);
      else {
        let tail = head;
        while (tail.next) tail = tail.next;
        tail.next = w;
      }
      this.armSweep(w.deadline);
      if (kind === 'result') this.queueResult(conn.epoch, ev as workerpb.Result);
      else conn.session.write(ev as workerpb.WorkerEvent);
    });
  }

  /** Makes sure the sweep timer fires by `at`. */
  private armSweep(at: number): void {
    if (at >= this.sweepAt) return;
    clearTimeout(this.sweepTimer);
    this.sweepAt = at;
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(0, at - Date.now()));
    // The open stream keeps the process alive while calls wait; this timer need not.
    this.sweepTimer.unref();
  }

  /** Times out the acks and ends the claim waits that are due; re-arms at the next deadline. */
  private sweep(): void {
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const map of Object.values(this.acks)) {
      for (const head of [...map.values()]) {
        for (let w: AckWaiter | undefined = head; w; ) {
          const after: AckWaiter | undefined = w.next;
          if (w.deadline <= now) {
            this.leaveAck(w, new CodeqError('UNAVAILABLE', `no ${w.kind} answer from ${this.target} within ${w.timeoutMs} ms`, { timeout: true, target: this.target, taskId: w.taskId }));
            this.stream.recycle(w.conn, `${w.kind} ack timeout`, w.timeoutMs);
          } else next = Math.min(next, w.deadline);
          w = after;
        }
      }
    }
    for (const w of [...this.waiters]) {
      if (w.deadline <= now) {
        this.lastLeave = 'timeout';
        w.resolve(null);
      } else next = Math.min(next, w.deadline);
    }
    if (next < Infinity) this.armSweep(next);
  }

  async heartbeat(id: string, input: HeartbeatInput, opts?: CallOptions): Promise<{ readonly leaseUntil?: string }> {
    const a = await this.request('heartbeat', id, { event: { $case: 'heartbeat', heartbeat: { taskId: id, extendSeconds: input.extendSeconds ?? 0, leaseId: input.leaseId ?? '' } } }, opts);
    return a.leaseUntil ? { leaseUntil: a.leaseUntil } : {};
  }

  async nack(id: string, input: NackInput, opts?: CallOptions): Promise<NackOutcome> {
    const a = await this.request('nack', id, { event: { $case: 'nack', nack: { taskId: id, delaySeconds: Math.max(0, Math.floor(input.delaySeconds ?? 0)), reason: input.reason ?? '', leaseId: input.leaseId ?? '' } } }, opts);
    return { status: a.dlq ? 'dlq' : 'requeued', delaySeconds: a.appliedDelaySeconds };
  }

  async abandon(id: string, input: { leaseId?: string } = {}, opts?: CallOptions): Promise<{ readonly status: string }> {
    await this.request('abandon', id, { event: { $case: 'abandon', abandon: { taskId: id, leaseId: input.leaseId ?? '' } } }, opts);
    return { status: 'requeued' };
  }

  /** TaskProgress on the stream (issue 17); answered by a NoteAck. */
  async reportProgress(id: string, input: ProgressInput, opts?: CallOptions): Promise<void> {
    const progressJson = Buffer.from(JSON.stringify(input.progress), 'utf8');
    await this.request('progress', id, { event: { $case: 'progress', progress: { taskId: id, leaseId: input.leaseId ?? '', progressJson } } }, opts);
  }

  /** TaskLogs on the stream (issue 17); answered by a NoteAck. */
  async appendLogs(id: string, input: AppendLogsInput, opts?: CallOptions): Promise<void> {
    const lines = input.lines.map((l) => ({ level: l.level ?? 'info', message: l.message, ...(l.at ? { at: new Date(l.at) } : {}) }));
    await this.request('logs', id, { event: { $case: 'logs', logs: { taskId: id, leaseId: input.leaseId ?? '', lines } } }, opts);
  }

  /** Records COMPLETED/FAILED. Artifacts are not carried by the stream: they go over HTTP when configured. */
  async submitResult(id: string, input: ResultInput, opts?: CallOptions): Promise<ResultRecord> {
    if (input.artifacts?.length) return this.needHttp('submitResult with artifacts').submitResult(id, input, opts);
    const result: workerpb.Result = {
      taskId: id,
      status: input.status,
      // COMPLETED needs a JSON object ({} for "no result"); FAILED sends none.
      resultJson: input.status === 'COMPLETED' ? Buffer.from(JSON.stringify(input.result ?? {}), 'utf8') : Buffer.alloc(0),
      error: input.error ?? '',
      leaseId: input.leaseId ?? '',
    };
    await this.request('result', id, result, opts);
    const rec: Record<string, unknown> = { taskId: id, status: input.status, completedAt: new Date().toISOString() };
    if (input.status === 'COMPLETED') rec['result'] = input.result ?? {};
    if (input.error) rec['error'] = input.error;
    return rec as unknown as ResultRecord;
  }

  private queueResult(epoch: number, result: workerpb.Result): void {
    // Results of an older session were failed with it (onClose): they are not sent on a new one.
    if (epoch !== this.resultsEpoch) this.results = [];
    this.resultsEpoch = epoch;
    this.results.push(result);
    if (this.resultsScheduled) return;
    this.resultsScheduled = true;
    setImmediate(() => {
      this.resultsScheduled = false;
      const conn = this.conn;
      const items = this.results;
      this.results = [];
      if (!conn || conn.epoch !== this.resultsEpoch || !items.length) return;
      if (items.length === 1) {
        conn.session.write({ event: { $case: 'result', result: items[0]! } });
        return;
      }
      // The server refuses a ResultBatch of more than 1,000 entries (RESOURCE_EXHAUSTED ends the
      // stream), so a large turn goes out as several batches.
      for (let i = 0; i < items.length; i += MAX_RESULT_BATCH) {
        conn.session.write({ event: { $case: 'resultBatch', resultBatch: { results: items.slice(i, i + MAX_RESULT_BATCH) } } });
      }
    });
  }

  // ---- calls the worker stream does not carry -----------------------------------------------

  private needHttp(op: string): WorkerTransport {
    if (!this.http) throw new CodeqError('VALIDATION_FAILED', `${op} is not available on the worker stream: pass baseUrl (the HTTP API) as well`);
    return this.http;
  }

  /**
   * Stops asking for work, half-closes the stream (the server answers what is in flight and
   * stops claiming), waits for the end (at most `timeoutMs`, 5 s cap) and releases the channel.
   * Waiting claims reject with `UNAVAILABLE`.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.readyTimer);
    clearTimeout(this.sweepTimer);
    this.sweepAt = Infinity;
    const closedErr = new CodeqError('UNAVAILABLE', 'transport is closed', { closed: true });
    await this.stream.close(() => {
      for (const w of this.waiters.splice(0)) w.reject(closedErr);
      for (const spare of [...this.spares]) this.dropSpare(spare);
    });
    this.failAcks(closedErr);
    if (this.ownsHttp) await this.http?.close();
  }
}
