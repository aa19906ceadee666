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
import { workerpb } from '@codeq/proto';
import type { Config } from '../../config/config.js';
import { CONFIG, LOGGER, TASK_STORE } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import type { Principal } from '../../domain/claims.js';
import { authorisedCommands } from '../../domain/claims.js';
import { formatLeaseUntil } from '../../domain/time.js';
import type { TaskRecord } from '../../domain/task.js';
import type { TaskStore } from '../../domain/task-store.js';
import type { Actor } from '../../domain/rules.js';
import { AuthService } from '../auth/auth.service.js';
import { LeasesService, type WorkerIdentity } from '../leases/leases.service.js';
import { TasksService } from '../tasks/tasks.service.js';
import { assertStorableText } from '../../domain/input-guards.js';
import { MAX_CLAIM_COMMANDS } from '../../domain/requests.js';
import { ackError, authFailure, grpcCodeName, MAX_STREAM_BATCH, StreamListener, StreamSession } from './stream-listener.js';

type Call = grpc.ServerDuplexStream<workerpb.WorkerEvent, workerpb.ServerEvent>;
type Ev = workerpb.ServerEvent['event'];

/** Largest `Ready.count` (upstream: unbounded; compatibility.md S6). */
export const MAX_READY_COUNT = 1000;
/** Readys one stream may have outstanding (upstream: unbounded; each Ready costs memory). */
export const MAX_OUTSTANDING_READYS = 10_000;
/** Largest lease / extension (same bound as HTTP). */
export const MAX_LEASE_SECONDS = 7 * 86400;
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

const actorOf = (p: Principal, leaseId: string): Actor => (leaseId ? { workerId: p.subject, leaseId } : { workerId: p.subject });

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
    server.addService(workerpb.WorkerStreamService, { stream: (call: Call) => new WorkerSession(this, call).start() });
  }

  // --- event handlers shared by every session (the same services as HTTP) ----------------------

  async result(p: Principal, r: workerpb.Result): Promise<workerpb.ResultAck> {
    const ack = { taskId: r.taskId, ok: false, errorMessage: '', errorCode: '' };
    if (r.status !== 'COMPLETED' && r.status !== 'FAILED') return { ...ack, errorMessage: `invalid status (must be COMPLETED or FAILED): "${r.status}"`, errorCode: 'VALIDATION_FAILED' };
    let result: unknown = null;
    if (r.resultJson.length) {
      try {
        result = JSON.parse(r.resultJson.toString('utf8'));
      } catch {
        return { ...ack, errorMessage: 'invalid result_json', errorCode: 'VALIDATION_FAILED' };
      }
      if (result !== null && (typeof result !== 'object' || Array.isArray(result))) return { ...ack, errorMessage: 'invalid result_json', errorCode: 'VALIDATION_FAILED' };
    }
    const body: Record<string, unknown> = { status: r.status, result, error: r.error };
    if (r.leaseId) body['leaseId'] = r.leaseId;
    try {
      await this.tasks.submitResult(p.tenantId, p.subject, r.taskId, body);
      return { ...ack, ok: true };
    } catch (e) {
      return { ...ack, ...ackError(e) };
    }
  }

  async nack(p: Principal, n: workerpb.Nack): Promise<workerpb.NackAck> {
    const ack = { taskId: n.taskId, ok: false, errorMessage: '', errorCode: '', appliedDelaySeconds: 0, dlq: false };
    try {
      assertStorableText(n.reason, 'reason');
      const out = await this.leases.nack(p.tenantId, actorOf(p, n.leaseId), n.taskId, n.delaySeconds > 0 ? n.delaySeconds : undefined, n.reason);
      return { ...ack, ok: true, appliedDelaySeconds: out.delaySeconds, dlq: out.status === 'dlq' };
    } catch (e) {
      return { ...ack, ...ackError(e) };
    }
  }

  async heartbeat(p: Principal, h: workerpb.Heartbeat): Promise<workerpb.HeartbeatAck> {
    const ack = { taskId: h.taskId, ok: false, errorMessage: '', errorCode: '', leaseUntil: '' };
    const extend = h.extendSeconds > 0 ? Math.min(h.extendSeconds, MAX_LEASE_SECONDS) : this.config.defaultLeaseSeconds;
    try {
      const t = await this.leases.heartbeat(p.tenantId, actorOf(p, h.leaseId), h.taskId, extend);
      return { ...ack, ok: true, leaseUntil: t.leaseUntilMs != null ? formatLeaseUntil(t.leaseUntilMs) : '' };
    } catch (e) {
      return { ...ack, ...ackError(e) };
    }
  }

  async abandon(p: Principal, a: workerpb.Abandon): Promise<workerpb.AbandonAck> {
    const ack = { taskId: a.taskId, ok: false, errorMessage: '', errorCode: '' };
    try {
      await this.leases.abandon(p.tenantId, actorOf(p, a.leaseId), a.taskId);
      return { ...ack, ok: true };
    } catch (e) {
      return { ...ack, ...ackError(e) };
    }
  }
}

/** Outstanding Readys of one stream that ask for the same commands and lease. */
interface ReadyGroup {
  key: string;
  commands: string[];
  leaseSeconds: number;
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
        if (this.scoped(p, 'codeq:claim')) this.ready(p, e.ready);
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

  private ready(p: Principal, r: workerpb.Ready): void {
    const requested = r.commands.map((c) => c.trim()).filter(Boolean);
    if (r.commands.length && !requested.length) return this.fail('PermissionDenied', 'event type not allowed');
    if (requested.length > MAX_CLAIM_COMMANDS) return this.fail('InvalidArgument', `invalid 'commands' (at most ${MAX_CLAIM_COMMANDS})`);
    if (!authorisedCommands(p.claims.eventTypes, requested)) return this.fail('PermissionDenied', 'event type not allowed');
    const leaseSeconds = r.leaseSeconds > 0 ? Math.min(r.leaseSeconds, MAX_LEASE_SECONDS) : this.svc.config.defaultLeaseSeconds;
    if (this.outstanding >= MAX_OUTSTANDING_READYS) return this.fail('ResourceExhausted', 'too many outstanding Readys');
    const key = `${leaseSeconds}\u0000${requested.join('\u0000')}`;
    let g = this.groups.get(key);
    if (!g) {
      g = { key, commands: requested, leaseSeconds, pending: [], credits: 0, pumping: false };
      this.groups.set(key, g);
    }
    const count = Math.min(Math.max(1, r.count), MAX_READY_COUNT);
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
          tasks = await this.svc.leases.claim(w, { commands: g.commands, leaseSeconds: g.leaseSeconds, waitSeconds: this.svc.claimSliceSeconds, count: Math.min(g.credits, MAX_READY_COUNT) }, signal);
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
    for (const t of lost) void this.svc.leases.abandon(p.tenantId, actorOf(p, t.leaseId ?? ''), t.id).catch(() => undefined);
  }
}
