/**
 * The worker gRPC stream (`/workerpb.WorkerStream/Stream`, grpc-streams.md §4) on plain
 * @grpc/grpc-js (docs/adr/0001-grpc-transport.md). Every event calls the same services as HTTP:
 * one behaviour, two transports.
 *
 * Flow control: each `Ready{count}` is one claim request, answered at most once, with one
 * `TaskAssignment` (count ≤ 1) or one `TaskBatch` of 1..count tasks, as soon as work is there — so
 * the tasks a worker holds never exceed the credits it granted. Outstanding Readys of one stream
 * with the same commands and lease are served together: one claim (one group commit) for all of
 * them, handed out in arrival order. Waiting is the store's waiter, woken by a create or a
 * promotion; there is no polling and no give-up while the stream lives.
 *
 * Fixes over upstream (docs/compatibility.md S1–S6): no 30 s silent Ready give-up; the worker id
 * is the token subject; tasks of other tenants are not found; a task claimed for a stream that
 * died before the push is handed back at once; Hello within 10 s; bounded count and lease.
 * Tasks already pushed to a stream that goes away keep their lease until it expires.
 */
import { setMaxListeners } from 'node:events';
import { Inject, Injectable } from '@nestjs/common';
import * as grpc from '@grpc/grpc-js';
import { reusingSerializer, workerpb } from '@codeq/proto';
import { CodeqError } from '@codeq/proto/errors';
import type { Config } from '../../config/config.js';
import { CONFIG, LOGGER, TASK_STORE } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import type { Principal } from '../../domain/claims.js';
import { formatLeaseUntil } from '../../domain/time.js';
import type { TaskRecord } from '../../domain/task.js';
import type { TaskStore } from '../../domain/task-store.js';
import type { Actor } from '../../domain/rules.js';
import { parseLogLines, progressText } from '../../domain/task-notes.js';
import { AuthService } from '../auth/auth.service.js';
import { LeasesService, type AuthorisedClaim, type WorkerIdentity } from '../leases/leases.service.js';
import { TasksService } from '../tasks/tasks.service.js';
import { MAX_READY_COUNT } from '../../domain/commands.js';
import { abandonFromProto, claimFromProto, heartbeatFromProto, nackFromProto, resultFromProto } from './stream-commands.js';
import { ackError, authFailure, grpcCodeName, MAX_STREAM_BATCH, StreamListener, StreamSession } from './stream-listener.js';

type Call = grpc.ServerDuplexStream<workerpb.WorkerEvent, workerpb.ServerEvent>;
const actorOf = (p: Principal, leaseId: string): Actor => (leaseId ? { workerId: p.subject, leaseId } : { workerId: p.subject });
type Ev = workerpb.ServerEvent['event'];

export { MAX_READY_COUNT } from '../../domain/commands.js';
/** Readys one stream may have outstanding (upstream: unbounded; each Ready costs memory). */
export const MAX_OUTSTANDING_READYS = 10_000;
/**
 * A waiting claim is re-armed after this long. Not a poll (creates and promotions wake it
 * directly); it only bounds how long a Ready can miss capacity freed on a `maxConsumers` topic.
 */
export const CLAIM_SLICE_SECONDS = 30;

export function toProtoTask(t: TaskRecord): workerpb.Task {
  return {
    id: t.id,
    command: t.command,
    payload: Buffer.from(t.payload, 'utf8'),
    priority: t.priority,
    webhook: t.webhook ?? '',
    maxAttempts: t.maxAttempts,
    status: t.status,
    workerId: t.workerId ?? '',
    leaseUntil: t.leaseUntilMs != null ? formatLeaseUntil(t.leaseUntilMs) : '',
    attempts: t.attempts,
    tenantId: t.tenantId,
    createdAt: new Date(t.createdAtMs),
    updatedAt: new Date(t.updatedAtMs),
    leaseId: t.leaseId ?? '',
    traceParent: t.traceParent ?? '',
    traceState: t.traceState ?? '',
  };
}

@Injectable()
export class WorkerStreamService extends StreamListener {
  /** Re-arm period of a waiting Ready (a field so tests can shorten it). */
  claimSliceSeconds = CLAIM_SLICE_SECONDS;

  constructor(
    @Inject(CONFIG) readonly config: Config,
    @Inject(LOGGER) log: Logger,
    @Inject(AuthService) readonly auth: AuthService,
    @Inject(LeasesService) readonly leases: LeasesService,
    @Inject(TasksService) readonly tasks: TasksService,
    @Inject(TASK_STORE) readonly store: TaskStore,
  ) {
    super('worker stream', log);
  }

  protected register(server: grpc.Server): void {
    // Answers are encoded through one reused protobuf writer (byte-identical; packages/proto serialize.ts).
    const def = { stream: { ...workerpb.WorkerStreamService.stream, responseSerialize: reusingSerializer(workerpb.ServerEvent) } };
    server.addService(def, { stream: (call: Call) => new WorkerSession(this, call).start() });
  }

  // --- event handlers shared by every session (the same services as HTTP) ----------------------

  // Each event is decoded and validated by the same validator as HTTP (stream-commands.ts), then
  // handed to the service as a typed command; a failure of either becomes the ack's error.

  async result(p: Principal, r: workerpb.Result): Promise<workerpb.ResultAck> {
    const ack = { taskId: r.taskId, ok: false, errorMessage: '', errorCode: '' };
    try {
      await this.tasks.submitResult(p.tenantId, p.subject, resultFromProto(r));
      return { ...ack, ok: true };
    } catch (e) {
      return { ...ack, ...ackError(e) };
    }
  }

  async nack(p: Principal, n: workerpb.Nack): Promise<workerpb.NackAck> {
    const ack = { taskId: n.taskId, ok: false, errorMessage: '', errorCode: '', appliedDelaySeconds: 0, dlq: false };
    try {
      const out = await this.leases.nack(p.tenantId, p.subject, nackFromProto(n));
      return { ...ack, ok: true, appliedDelaySeconds: out.delaySeconds, dlq: out.status === 'dlq' };
    } catch (e) {
      return { ...ack, ...ackError(e) };
    }
  }

  async heartbeat(p: Principal, h: workerpb.Heartbeat): Promise<workerpb.HeartbeatAck> {
    const ack = { taskId: h.taskId, ok: false, errorMessage: '', errorCode: '', leaseUntil: '' };
    try {
      const t = await this.leases.heartbeat(p.tenantId, p.subject, heartbeatFromProto(h, this.config.defaultLeaseSeconds));
      return { ...ack, ok: true, leaseUntil: t.leaseUntilMs != null ? formatLeaseUntil(t.leaseUntilMs) : '' };
    } catch (e) {
      return { ...ack, ...ackError(e) };
    }
  }

  /** TaskProgress (issue 17): the holder's progress, lease-fenced like a heartbeat. */
  async progress(p: Principal, m: workerpb.TaskProgress): Promise<workerpb.NoteAck> {
    const ack = { taskId: m.taskId, kind: 'progress', ok: false, errorMessage: '', errorCode: '' };
    try {
      let value: unknown;
      try {
        value = JSON.parse(Buffer.from(m.progressJson).toString('utf8')) as unknown;
      } catch {
        throw new CodeqError('VALIDATION_FAILED', "invalid 'progress' (progress_json is not JSON)", { field: 'progress' });
      }
      await this.leases.progress(p.tenantId, actorOf(p, m.leaseId), m.taskId, progressText(value));
      return { ...ack, ok: true };
    } catch (e) {
      return { ...ack, ...ackError(e) };
    }
  }

  /** TaskLogs (issue 17): lines appended to the task's log, lease-fenced like a heartbeat. */
  async logs(p: Principal, m: workerpb.TaskLogs): Promise<workerpb.NoteAck> {
    const ack = { taskId: m.taskId, kind: 'logs', ok: false, errorMessage: '', errorCode: '' };
    try {
      const body = { lines: m.lines.map((l) => ({ level: l.level || 'info', message: l.message, ...(l.at ? { at: l.at.toISOString() } : {}) })) };
      const { lines } = parseLogLines(body, Date.now());
      await this.leases.appendLogs(p.tenantId, actorOf(p, m.leaseId), m.taskId, lines);
      return { ...ack, ok: true };
    } catch (e) {
      return { ...ack, ...ackError(e) };
    }
  }

  async abandon(p: Principal, a: workerpb.Abandon): Promise<workerpb.AbandonAck> {
    const ack = { taskId: a.taskId, ok: false, errorMessage: '', errorCode: '' };
    try {
      await this.leases.abandon(p.tenantId, p.subject, abandonFromProto(a));
      return { ...ack, ok: true };
    } catch (e) {
      return { ...ack, ...ackError(e) };
    }
  }
}

/** Outstanding Readys of one stream that ask for the same commands and lease. */
interface ReadyGroup {
  key: string;
  /** The group's claim, validated and authorised once (by its first Ready). */
  claim: AuthorisedClaim;
  /** Readys in arrival order: how many tasks each may take and whether it wants a TaskBatch. */
  pending: { count: number; batch: boolean }[];
  credits: number;
  pumping: boolean;
}

class WorkerSession extends StreamSession<workerpb.WorkerEvent, workerpb.ServerEvent> {
  private principal: Principal | null = null;
  private identity: WorkerIdentity | null = null;
  private authing = false;
  private readonly groups = new Map<string, ReadyGroup>();
  private outstanding = 0;
  /** Aborts waiting claims when the stream stops handling events (it may still be written). */
  private readonly waits = new AbortController();

  constructor(
    private readonly svc: WorkerStreamService,
    call: Call,
  ) {
    super(svc, call);
    setMaxListeners(0, this.waits.signal); // one listener per waiting claim group
  }

  protected override onStop(): void {
    this.waits.abort();
  }

  private emit(ev: Ev): boolean {
    return this.send({ event: ev });
  }

  private fail(code: string, message: string): void {
    this.emit({ $case: 'error', error: { code, message } });
  }

  protected onEvent(ev: workerpb.WorkerEvent): void {
    const e = ev.event;
    const p = this.principal;
    if (!p) {
      if (this.authing) return; // input is paused while authenticating; nothing gets here
      if (e?.$case !== 'hello') return this.end(grpc.status.FAILED_PRECONDITION, 'first event must be Hello');
      return this.hello(e.hello);
    }
    switch (e?.$case) {
      case 'hello':
        return this.fail('FailedPrecondition', 'already-authenticated');
      case 'ready':
        if (this.scoped(p, 'codeq:claim')) this.ready(e.ready);
        return;
      case 'result':
        if (this.scoped(p, 'codeq:result')) this.run(this.svc.result(p, e.result), 1, (a) => this.emit({ $case: 'resultAck', resultAck: a }));
        return;
      case 'resultBatch': {
        const rs = e.resultBatch.results;
        if (rs.length > MAX_STREAM_BATCH) return this.end(grpc.status.RESOURCE_EXHAUSTED, `ResultBatch exceeds ${MAX_STREAM_BATCH} entries`);
        if (this.scoped(p, 'codeq:result') && rs.length) {
          this.run(Promise.all(rs.map((r) => this.svc.result(p, r))), rs.length, (acks) => this.emit({ $case: 'resultAckBatch', resultAckBatch: { acks } }));
        }
        return;
      }
      case 'nack':
        if (this.scoped(p, 'codeq:nack')) this.run(this.svc.nack(p, e.nack), 1, (a) => this.emit({ $case: 'nackAck', nackAck: a }));
        return;
      case 'heartbeat':
        if (this.scoped(p, 'codeq:heartbeat')) this.run(this.svc.heartbeat(p, e.heartbeat), 1, (a) => this.emit({ $case: 'heartbeatAck', heartbeatAck: a }));
        return;
      case 'abandon':
        if (this.scoped(p, 'codeq:abandon')) this.run(this.svc.abandon(p, e.abandon), 1, (a) => this.emit({ $case: 'abandonAck', abandonAck: a }));
        return;
      case 'progress':
        if (this.scoped(p, 'codeq:heartbeat')) this.run(this.svc.progress(p, e.progress), 1, (a) => this.emit({ $case: 'noteAck', noteAck: a }));
        return;
      case 'logs':
        if (this.scoped(p, 'codeq:heartbeat')) this.run(this.svc.logs(p, e.logs), 1, (a) => this.emit({ $case: 'noteAck', noteAck: a }));
        return;
      case undefined:
        return this.fail('InvalidArgument', 'unknown-event');
    }
  }

  /** Authenticate; events sent before the HelloAck wait (input paused) and are handled after it. */
  private hello(h: workerpb.Hello): void {
    this.authing = true;
    this.helloDone();
    const token = h.token.trim();
    if (!token) return this.end(grpc.status.UNAUTHENTICATED, 'auth failed: missing token');
    this.pauseInput('auth', true);
    this.svc.auth.authenticateWorker(token).then(
      (p) => {
        const supplied = h.workerId.trim();
        if (supplied && supplied !== p.subject) {
          this.svc.log.debug({ subject: p.subject }, 'worker stream: Hello.worker_id ignored; the worker id is the token subject');
        }
        this.principal = p;
        this.expireAt(p.claims.expiresAtMs);
        this.identity = { tenantId: p.tenantId, workerId: p.subject, eventTypes: p.claims.eventTypes };
        this.authing = false;
        this.emit({ $case: 'helloAck', helloAck: { workerId: p.subject, tenantId: p.tenantId } });
        this.pauseInput('auth', false);
      },
      (err: unknown) => {
        const f = authFailure(err);
        this.end(f.code, f.details);
      },
    );
  }

  private scoped(p: Principal, scope: string): boolean {
    if (p.claims.scopes.includes(scope)) return true;
    this.fail('PermissionDenied', 'missing scope');
    return false;
  }

  private ready(r: workerpb.Ready): void {
    let claim: AuthorisedClaim;
    try {
      claim = this.svc.leases.authorise(this.identity!, claimFromProto(r, this.svc.config.defaultLeaseSeconds));
    } catch (e) {
      return this.fail(grpcCodeName(e), ackError(e).errorMessage);
    }
    if (this.outstanding >= MAX_OUTSTANDING_READYS) return this.fail('ResourceExhausted', 'too many outstanding Readys');
    const key = `${claim.leaseSeconds}\u0000${claim.commands.join('\u0000')}`;
    let g = this.groups.get(key);
    if (!g) {
      g = { key, claim, pending: [], credits: 0, pumping: false };
      this.groups.set(key, g);
    }
    const { count } = claim;
    g.pending.push({ count, batch: r.count > 1 });
    g.credits += count;
    this.outstanding++;
    if (!g.pumping) this.run(this.pump(g), 1);
  }

  /** Serve a group's Readys until none is left or the stream stops. */
  private async pump(g: ReadyGroup): Promise<void> {
    g.pumping = true;
    const w = this.identity!;
    const signal = this.waits.signal;
    try {
      while (g.pending.length && !this.stopping) {
        let tasks: TaskRecord[];
        try {
          tasks = await this.svc.leases.claim(w, { ...g.claim, waitSeconds: this.svc.claimSliceSeconds, count: Math.min(g.credits, MAX_READY_COUNT) }, signal);
        } catch (e) {
          // Upstream answers the failed Ready with ServerError{Internal, <text>}.
          const r = g.pending.shift()!;
          g.credits -= r.count;
          this.outstanding--;
          this.fail(grpcCodeName(e), ackError(e).errorMessage);
          continue;
        }
        if (tasks.length) {
          this.deliver(g, tasks);
          continue;
        }
        if (this.stopping || signal.aborted) return;
        if (!this.svc.store.healthy()) {
          // Storage stopped serving (shutdown or a failed writer): the client reconnects later.
          this.end(grpc.status.UNAVAILABLE, 'server shutting down');
          return;
        }
      }
    } finally {
      g.pumping = false;
      if (!g.pending.length && this.groups.get(g.key) === g) this.groups.delete(g.key);
    }
  }

  /** Hand claimed tasks to the group's Readys in arrival order; tasks nobody can receive go back. */
  private deliver(g: ReadyGroup, tasks: TaskRecord[]): void {
    let i = 0;
    const lost: TaskRecord[] = [];
    while (i < tasks.length && g.pending.length) {
      const r = g.pending.shift()!;
      g.credits -= r.count;
      this.outstanding--;
      const take = tasks.slice(i, i + r.count);
      i += take.length;
      // A stream that stopped handling events (client half-close, shutdown) still accepts writes,
      // but its client has stopped working: a task pushed now would sit leased until expiry.
      const ok =
        !this.stopping &&
        (r.batch
          ? this.emit({ $case: 'taskBatch', taskBatch: { tasks: take.map(toProtoTask) } })
          : this.emit({ $case: 'task', task: { task: toProtoTask(take[0]!) } }));
      if (!ok) lost.push(...take);
    }
    lost.push(...tasks.slice(i));
    // Claimed for a stream that died or stopped before the push: give them back now (attempts unchanged).
    const p = this.principal!;
    for (const t of lost) void this.svc.leases.abandon(p.tenantId, p.subject, t.leaseId ? { taskId: t.id, leaseId: t.leaseId } : { taskId: t.id }).catch(() => undefined);
  }
}
