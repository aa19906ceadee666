/**
 * The worker gRPC stream (`/workerpb.WorkerStream/Stream`, grpc-streams.md §4), on plain
 * @grpc/grpc-js inside the Nest app (docs/adr/0001-grpc-transport.md). Every event calls the same
 * services as HTTP: one behaviour, two transports.
 *
 * Fixes over upstream: an outstanding Ready waits for work as long as the stream lives (no 30 s
 * silent give-up); the worker id is the token subject; tasks of other tenants are not found; a task
 * claimed for a stream that died before the push is handed back at once (abandon) instead of
 * waiting for its lease to expire; a Hello must arrive within 10 s.
 */
import { setMaxListeners } from 'node:events';
import { Inject, Injectable } from '@nestjs/common';
import * as grpc from '@grpc/grpc-js';
import { CodeqError } from '@codeq/proto/errors';
import { workerpb } from '@codeq/proto';
import type { Config } from '../../config/config.js';
import { CONFIG, LOGGER } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import type { Principal } from '../../domain/claims.js';
import { authorisedCommands } from '../../domain/claims.js';
import { formatLeaseUntil } from '../../domain/time.js';
import type { TaskRecord } from '../../domain/task.js';
import type { Actor } from '../../domain/rules.js';
import { AuthService } from '../auth/auth.service.js';
import { LeasesService } from '../leases/leases.service.js';
import { TasksService } from '../tasks/tasks.service.js';
import { authFailure, GrpcListener, grpcCodeName } from './grpc-listener.js';

type Call = grpc.ServerDuplexStream<workerpb.WorkerEvent, workerpb.ServerEvent>;

/** Largest Ready batch (upstream: unbounded). */
export const MAX_READY_COUNT = 1000;
/** Ready waits are re-armed in slices of this length while the stream lives. */
const READY_SLICE_SECONDS = 3600;
export const HELLO_TIMEOUT_MS = 10_000;

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
  };
}

const errorOf = (e: unknown): { errorMessage: string; errorCode: string } =>
  CodeqError.is(e) ? { errorMessage: e.message, errorCode: e.code } : { errorMessage: e instanceof Error ? e.message : String(e), errorCode: 'INTERNAL' };

@Injectable()
export class WorkerStreamServer extends GrpcListener {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) log: Logger,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(LeasesService) private readonly leases: LeasesService,
    @Inject(TasksService) private readonly tasks: TasksService,
  ) {
    super('worker stream', log);
  }

  protected register(server: grpc.Server): void {
    server.addService(workerpb.WorkerStreamService, { stream: (call: Call) => this.session(call) });
  }

  private session(call: Call): void {
    const life = new AbortController();
    setMaxListeners(0, life.signal); // every outstanding Ready listens for the end of the stream
    const end = this.track(call, life);
    let principal: Principal | null = null;
    let authing = false;
    const helloTimer = setTimeout(() => end(grpc.status.DEADLINE_EXCEEDED, 'no Hello within 10s'), HELLO_TIMEOUT_MS);
    helloTimer.unref();
    const send = (ev: workerpb.ServerEvent['event']): boolean => {
      if (life.signal.aborted || call.writableEnded || call.destroyed) return false;
      call.write({ event: ev });
      return true;
    };
    const fail = (code: string, message: string) => send({ $case: 'error', error: { code, message } });

    call.on('data', (ev: workerpb.WorkerEvent) => {
      const e = ev.event;
      if (!principal) {
        if (authing) return; // events before the HelloAck are ignored
        if (e?.$case !== 'hello') return end(grpc.status.FAILED_PRECONDITION, 'first event must be Hello');
        authing = true;
        clearTimeout(helloTimer);
        const token = e.hello.token.trim();
        if (!token) return end(grpc.status.UNAUTHENTICATED, 'auth failed: missing token');
        this.auth.authenticateWorker(token).then(
          (p) => {
            principal = p;
            if (e.hello.workerId.trim() && e.hello.workerId.trim() !== p.subject) {
              this.log.debug({ supplied: e.hello.workerId, subject: p.subject }, 'worker stream: Hello.worker_id ignored; the token subject is the worker id');
            }
            send({ $case: 'helloAck', helloAck: { workerId: p.subject, tenantId: p.tenantId } });
          },
          (err: unknown) => {
            const f = authFailure(err);
            end(f.code, f.details);
          },
        );
        return;
      }
      const p = principal;
      const need = (scope: string): boolean => {
        if (p.claims.scopes.includes(scope)) return true;
        fail('PermissionDenied', 'missing scope');
        return false;
      };
      switch (e?.$case) {
        case 'hello':
          fail('FailedPrecondition', 'already-authenticated');
          return;
        case 'ready':
          if (need('codeq:claim')) void this.ready(p, e.ready, life.signal, send, fail);
          return;
        case 'result':
          if (need('codeq:result')) void this.result(p, e.result).then((ack) => send({ $case: 'resultAck', resultAck: ack }));
          return;
        case 'resultBatch':
          if (need('codeq:result') && e.resultBatch.results.length) {
            void Promise.all(e.resultBatch.results.map((r) => this.result(p, r))).then((acks) => send({ $case: 'resultAckBatch', resultAckBatch: { acks } }));
          }
          return;
        case 'nack':
          if (need('codeq:nack')) void this.nack(p, e.nack).then((ack) => send({ $case: 'nackAck', nackAck: ack }));
          return;
        case 'heartbeat':
          if (need('codeq:heartbeat')) void this.heartbeat(p, e.heartbeat).then((ack) => send({ $case: 'heartbeatAck', heartbeatAck: ack }));
          return;
        case 'abandon':
          if (need('codeq:abandon')) void this.abandon(p, e.abandon).then((ack) => send({ $case: 'abandonAck', abandonAck: ack }));
          return;
        case undefined:
          fail('InvalidArgument', 'unknown-event');
          return;
      }
    });
    call.on('end', () => end(grpc.status.OK, 'OK'));
  }

  private actor(p: Principal, leaseId: string): Actor {
    return leaseId ? { workerId: p.subject, leaseId } : { workerId: p.subject };
  }

  /** One Ready = one claim request, answered when work is there (or never, if the stream ends first). */
  private async ready(p: Principal, r: workerpb.Ready, signal: AbortSignal, send: (ev: workerpb.ServerEvent['event']) => boolean, fail: (c: string, m: string) => boolean): Promise<void> {
    const requested = r.commands.map((c) => c.trim()).filter(Boolean);
    if (r.commands.length && !requested.length) return void fail('PermissionDenied', 'event type not allowed');
    if (!authorisedCommands(p.claims.eventTypes, requested)) return void fail('PermissionDenied', 'event type not allowed');
    const count = Math.min(Math.max(1, r.count), MAX_READY_COUNT);
    const leaseSeconds = r.leaseSeconds > 0 ? Math.min(r.leaseSeconds, 7 * 86400) : this.config.defaultLeaseSeconds;
    const identity = { tenantId: p.tenantId, workerId: p.subject, eventTypes: p.claims.eventTypes };
    try {
      while (!signal.aborted) {
        const tasks = await this.leases.claim(identity, { commands: requested, leaseSeconds, waitSeconds: READY_SLICE_SECONDS, count }, signal);
        if (!tasks.length) {
          if (this.closing) return;
          continue;
        }
        const ok = r.count > 1 ? send({ $case: 'taskBatch', taskBatch: { tasks: tasks.map(toProtoTask) } }) : send({ $case: 'task', task: { task: toProtoTask(tasks[0]!) } });
        if (!ok) {
          // The stream died between claim and push: give the tasks back now.
          for (const t of tasks) await this.leases.abandon(p.tenantId, this.actor(p, t.leaseId ?? ''), t.id).catch(() => undefined);
        }
        return;
      }
    } catch (e) {
      fail(grpcCodeName(e), errorOf(e).errorMessage);
    }
  }

  private async result(p: Principal, r: workerpb.Result): Promise<workerpb.ResultAck> {
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
      return { ...ack, ...errorOf(e) };
    }
  }

  private async nack(p: Principal, n: workerpb.Nack): Promise<workerpb.NackAck> {
    const ack = { taskId: n.taskId, ok: false, errorMessage: '', errorCode: '', appliedDelaySeconds: 0, dlq: false };
    try {
      const out = await this.leases.nack(p.tenantId, this.actor(p, n.leaseId), n.taskId, n.delaySeconds > 0 ? n.delaySeconds : undefined, n.reason);
      return { ...ack, ok: true, appliedDelaySeconds: out.delaySeconds, dlq: out.status === 'dlq' };
    } catch (e) {
      return { ...ack, ...errorOf(e) };
    }
  }

  private async heartbeat(p: Principal, h: workerpb.Heartbeat): Promise<workerpb.HeartbeatAck> {
    const ack = { taskId: h.taskId, ok: false, errorMessage: '', errorCode: '', leaseUntil: '' };
    const extend = h.extendSeconds > 0 ? Math.min(h.extendSeconds, 7 * 86400) : this.config.defaultLeaseSeconds;
    try {
      const t = await this.leases.heartbeat(p.tenantId, this.actor(p, h.leaseId), h.taskId, extend);
      return { ...ack, ok: true, leaseUntil: t.leaseUntilMs != null ? formatLeaseUntil(t.leaseUntilMs) : '' };
    } catch (e) {
      return { ...ack, ...errorOf(e) };
    }
  }

  private async abandon(p: Principal, a: workerpb.Abandon): Promise<workerpb.AbandonAck> {
    const ack = { taskId: a.taskId, ok: false, errorMessage: '', errorCode: '' };
    try {
      await this.leases.abandon(p.tenantId, this.actor(p, a.leaseId), a.taskId);
      return { ...ack, ok: true };
    } catch (e) {
      return { ...ack, ...errorOf(e) };
    }
  }
}
