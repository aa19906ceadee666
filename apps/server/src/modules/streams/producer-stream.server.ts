/**
 * The producer gRPC stream (`/producerpb.ProducerStream/Stream`, grpc-streams.md §5): Hello with
 * the producer validator, then creates acknowledged by `seq` once committed. Same TasksService as
 * HTTP (validation, idempotency per tenant, topic policies, metrics, notifications).
 */
import { Inject, Injectable } from '@nestjs/common';
import * as grpc from '@grpc/grpc-js';
import { CodeqError } from '@codeq/proto/errors';
import { producerpb } from '@codeq/proto';
import { LOGGER } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import type { Principal } from '../../domain/claims.js';
import { goJson } from '../../domain/go-json.js';
import { MAX_COMMAND_LENGTH, MAX_KEY_LENGTH, validWebhook, type CreateInput } from '../../domain/requests.js';
import { AuthService } from '../auth/auth.service.js';
import { TasksService } from '../tasks/tasks.service.js';
import { authFailure, GrpcListener } from './grpc-listener.js';
import { HELLO_TIMEOUT_MS } from './worker-stream.server.js';

type Call = grpc.ServerDuplexStream<producerpb.ProducerEvent, producerpb.ServerEvent>;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Validate one CreateTask in upstream's order; the error text is the ack's message. */
export function createInputFromProto(c: producerpb.CreateTask, now: number): CreateInput {
  const bad = (m: string) => new CodeqError('VALIDATION_FAILED', m);
  const command = c.command.trim();
  if (!command) throw bad('command is required');
  if (command.length > MAX_COMMAND_LENGTH || CONTROL.test(command)) throw bad('invalid command');
  if (c.delaySeconds < 0) throw bad('delaySeconds must be >= 0');
  if (c.webhook && !validWebhook(c.webhook)) throw bad('invalid webhook url');
  if (c.idempotencyKey.length > MAX_KEY_LENGTH) throw bad(`invalid 'idempotencyKey' (at most ${MAX_KEY_LENGTH} printable characters)`);
  // Payload bytes: JSON is normalised like HTTP payloads; other bytes are stored verbatim (upstream).
  let payload = 'null';
  if (c.payload.length) {
    const text = c.payload.toString('utf8');
    try {
      payload = goJson(JSON.parse(text));
    } catch {
      payload = text;
    }
  }
  let visibleAtMs: number | null = null;
  if (c.runAt) visibleAtMs = c.runAt.getTime() > now ? c.runAt.getTime() : null;
  else if (c.delaySeconds > 0) visibleAtMs = now + c.delaySeconds * 1000;
  return {
    command,
    payload,
    priority: Math.min(9, Math.max(0, c.priority)),
    webhook: c.webhook || null,
    maxAttempts: Math.min(c.maxAttempts, 1000),
    idempotencyKey: c.idempotencyKey || null,
    visibleAtMs,
  };
}

@Injectable()
export class ProducerStreamServer extends GrpcListener {
  constructor(
    @Inject(LOGGER) log: Logger,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(TasksService) private readonly tasks: TasksService,
  ) {
    super('producer stream', log);
  }

  protected register(server: grpc.Server): void {
    server.addService(producerpb.ProducerStreamService, { stream: (call: Call) => this.session(call) });
  }

  private session(call: Call): void {
    const life = new AbortController();
    const end = this.track(call, life);
    let principal: Principal | null = null;
    let authing = false;
    const helloTimer = setTimeout(() => end(grpc.status.DEADLINE_EXCEEDED, 'no Hello within 10s'), HELLO_TIMEOUT_MS);
    helloTimer.unref();
    const send = (ev: producerpb.ServerEvent['event']) => {
      if (!life.signal.aborted && !call.writableEnded && !call.destroyed) call.write({ event: ev });
    };
    call.on('data', (ev: producerpb.ProducerEvent) => {
      const e = ev.event;
      if (!principal) {
        if (authing) return;
        if (e?.$case !== 'hello') return end(grpc.status.FAILED_PRECONDITION, 'first event must be Hello');
        authing = true;
        clearTimeout(helloTimer);
        const token = e.hello.token.trim();
        if (!token) return end(grpc.status.UNAUTHENTICATED, 'missing token');
        this.auth.authenticateProducer(token).then(
          (p) => {
            principal = p;
            send({ $case: 'helloAck', helloAck: { tenantId: p.tenantId, subject: p.subject } });
          },
          (err: unknown) => {
            const f = authFailure(err);
            end(f.code, f.details);
          },
        );
        return;
      }
      const p = principal;
      switch (e?.$case) {
        case 'hello':
          send({ $case: 'error', error: { code: 'FailedPrecondition', message: 'already-authenticated' } });
          return;
        case 'create':
          void this.create(p, e.create).then((ack) => send({ $case: 'createAck', createAck: ack }));
          return;
        case 'createBatch': {
          const items = e.createBatch.tasks;
          if (!items.length) return;
          void (async () => {
            const acks: producerpb.CreateAck[] = [];
            for (const item of items) acks.push(await this.create(p, item)); // serial, in order
            send({ $case: 'createAckBatch', createAckBatch: { acks } });
          })();
          return;
        }
        case undefined:
          send({ $case: 'error', error: { code: 'InvalidArgument', message: 'unknown-event' } });
          return;
      }
    });
    call.on('end', () => end(grpc.status.OK, 'OK'));
  }

  private async create(p: Principal, c: producerpb.CreateTask): Promise<producerpb.CreateAck> {
    try {
      const task = await this.tasks.createTyped(p.tenantId, createInputFromProto(c, Date.now()));
      return { seq: c.seq, ok: true, taskId: task.id, errorMessage: '', errorCode: '' };
    } catch (e) {
      return { seq: c.seq, ok: false, taskId: '', errorMessage: e instanceof Error ? e.message : String(e), errorCode: CodeqError.is(e) ? e.code : 'INTERNAL' };
    }
  }
}
