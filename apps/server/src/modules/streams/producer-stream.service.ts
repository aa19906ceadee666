/**
 * The producer gRPC stream (`/producerpb.ProducerStream/Stream`, grpc-streams.md §5): Hello with
 * the producer validator, then creates acknowledged by `seq` once committed. Same validator
 * (`stream-commands.ts` → `domain/commands.ts`) and TasksService as HTTP (idempotency per tenant,
 * topic policies, metrics, notifications).
 *
 * A `CreateTaskBatch` is applied in order (entry i sees entries < i, e.g. a repeated idempotency
 * key) and its entries share one group commit; its acks come back in one `CreateAckBatch`.
 */
import { Inject, Injectable } from '@nestjs/common';
import * as grpc from '@grpc/grpc-js';
import { producerpb, reusingSerializer } from '@codeq/proto';
import { CLOCK, LOGGER, type Clock } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import type { Principal } from '../../domain/claims.js';
import type { TaskRecord } from '../../domain/task.js';
import { formatLeaseUntil, formatTime } from '../../domain/time.js';
import { AuthService } from '../auth/auth.service.js';
import { TasksService } from '../tasks/tasks.service.js';
import { ackError, authFailure, MAX_STREAM_BATCH, StreamListener, StreamSession } from './stream-listener.js';
import { createFromProto } from './stream-commands.js';

type Call = grpc.ServerDuplexStream<producerpb.ProducerEvent, producerpb.ServerEvent>;

/** `CreateAck.task` (codeQ-TS addition): the stored task in the HTTP task JSON's terms (`taskToJson`). */
export function toStoredTask(t: TaskRecord): producerpb.StoredTask {
  return {
    id: t.id,
    command: t.command,
    payload: Buffer.from(t.payload, 'utf8'),
    priority: t.priority,
    webhook: t.webhook ?? '',
    maxAttempts: t.maxAttempts,
    status: t.status,
    lastKnownLocation: t.location,
    attempts: t.attempts,
    tenantId: t.tenantId,
    createdAt: formatTime(t.createdAtMs),
    updatedAt: formatTime(t.updatedAtMs),
    workerId: t.workerId ?? '',
    leaseUntil: t.leaseUntilMs != null ? formatLeaseUntil(t.leaseUntilMs) : '',
    leaseId: t.leaseId ?? '',
    error: t.error ?? '',
    resultKey: t.resultKey ?? '',
    cancelRequested: t.cancelRequested,
  };
}

@Injectable()
export class ProducerStreamService extends StreamListener {
  constructor(
    @Inject(LOGGER) log: Logger,
    @Inject(AuthService) readonly auth: AuthService,
    @Inject(TasksService) readonly tasks: TasksService,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    super('producer stream', log);
  }

  protected register(server: grpc.Server): void {
    // Answers are encoded through one reused protobuf writer (byte-identical; packages/proto serialize.ts).
    const def = { stream: { ...producerpb.ProducerStreamService.stream, responseSerialize: reusingSerializer(producerpb.ServerEvent) } };
    server.addService(def, { stream: (call: Call) => new ProducerSession(this, call).start() });
  }

  /**
   * Create one task; never rejects (failures become `ok:false` acks). Validation and the store's
   * in-memory apply run synchronously before the first await, so calls made in a loop are applied
   * in call order and share one group commit.
   */
  create(p: Principal, c: producerpb.CreateTask): Promise<producerpb.CreateAck> {
    let pending: Promise<TaskRecord>;
    try {
      pending = this.tasks.create(p.tenantId, createFromProto(c, this.clock.now()));
    } catch (e) {
      return Promise.resolve({ seq: c.seq, ok: false, taskId: '', ...ackError(e), task: undefined });
    }
    return pending.then(
      (t) => ({ seq: c.seq, ok: true, taskId: t.id, errorMessage: '', errorCode: '', task: toStoredTask(t) }),
      (e: unknown) => ({ seq: c.seq, ok: false, taskId: '', ...ackError(e), task: undefined }),
    );
  }
}

class ProducerSession extends StreamSession<producerpb.ProducerEvent, producerpb.ServerEvent> {
  private principal: Principal | null = null;
  private authing = false;

  constructor(
    private readonly svc: ProducerStreamService,
    call: Call,
  ) {
    super(svc, call);
  }

  private emit(ev: producerpb.ServerEvent['event']): boolean {
    return this.send({ event: ev });
  }

  protected onEvent(ev: producerpb.ProducerEvent): void {
    const e = ev.event;
    const p = this.principal;
    if (!p) {
      if (this.authing) return; // input is paused while authenticating
      if (e?.$case !== 'hello') return this.end(grpc.status.FAILED_PRECONDITION, 'first event must be Hello');
      return this.hello(e.hello);
    }
    switch (e?.$case) {
      case 'hello':
        this.emit({ $case: 'error', error: { code: 'FailedPrecondition', message: 'already-authenticated' } });
        return;
      case 'create':
        this.run(this.svc.create(p, e.create), 1, (a) => this.emit({ $case: 'createAck', createAck: a }));
        return;
      case 'createBatch': {
        const items = e.createBatch.tasks;
        if (!items.length) return; // upstream: no reply
        if (items.length > MAX_STREAM_BATCH) return this.end(grpc.status.RESOURCE_EXHAUSTED, `CreateTaskBatch exceeds ${MAX_STREAM_BATCH} entries`);
        const acks = items.map((c) => this.svc.create(p, c)); // applied in order, one commit
        this.run(Promise.all(acks), items.length, (a) => this.emit({ $case: 'createAckBatch', createAckBatch: { acks: a } }));
        return;
      }
      case undefined:
        this.emit({ $case: 'error', error: { code: 'InvalidArgument', message: 'unknown-event' } });
        return;
    }
  }

  private hello(h: producerpb.Hello): void {
    this.authing = true;
    this.helloDone();
    const token = h.token.trim();
    if (!token) return this.end(grpc.status.UNAUTHENTICATED, 'missing token');
    this.pauseInput('auth', true);
    this.svc.auth.authenticateProducer(token).then(
      (p) => {
        this.principal = p;
        this.expireAt(p.claims.expiresAtMs);
        this.authing = false;
        this.emit({ $case: 'helloAck', helloAck: { tenantId: p.tenantId, subject: p.subject } });
        this.pauseInput('auth', false);
      },
      (err: unknown) => {
        const f = authFailure(err);
        this.end(f.code, f.details);
      },
    );
  }
}
