/**
 * The hot task routes (one request per step of a task's life), registered directly on Fastify
 * instead of through Nest's router (issue 13 item 2): Nest's per-request chain (execution context,
 * guard and param-decorator plumbing, pipes, reply handling) and the default JSON serialiser were
 * a measurable share of these requests. Behaviour is the Nest controllers' own:
 *
 * - authentication, worker scope, rate limit and its metric: {@link AuthGuard.authorize}, the same
 *   function the Nest guard runs, with the same requirement per route;
 * - request id: set on the raw request before any route (app.ts), errors through
 *   {@link sendError}, the function the global Nest filter uses (also for body-parser errors,
 *   through the routes' `errorHandler`), so error bodies and statuses are unchanged;
 * - the same validators (domain/requests.ts), services and JSON shapes (domain/task.ts); answers go
 *   through the app's reply serialiser like every other route (app.ts: JSON with `<` `>` `&`
 *   escaped as Go writes them), which takes precedence over per-route response schemas, so the
 *   routes declare none.
 *
 * Handlers are arrow properties made once per server: no per-request closures.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/config.js';
import type { Clock } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import { disconnectSignal } from '../../common/http.js';
import { sendError } from '../../common/http-exception.filter.js';
import { parseAbandon, parseClaim, parseCreate, parseHeartbeat, parseNack, parseResult } from '../../domain/requests.js';
import { resultToJson, taskToJson } from '../../domain/task.js';
import type { AuthGuard, AuthRequirement } from '../auth/auth.guard.js';
import type { LeasesService } from '../leases/leases.service.js';
import type { TasksService } from '../tasks/tasks.service.js';

/** Route requirements, as the `@Auth(...)` decorators of the Nest controllers declared them. */
const NEED_CREATE: AuthRequirement = { mode: 'producer', limit: { scope: 'producer', operation: 'create_task' } };
const NEED_ANY: AuthRequirement = { mode: 'any' };
const NEED_CLAIM: AuthRequirement = { mode: 'worker', scope: 'codeq:claim', limit: { scope: 'worker', operation: 'claim' } };
const NEED_RESULT: AuthRequirement = { mode: 'worker', scope: 'codeq:result' };
const NEED_HEARTBEAT: AuthRequirement = { mode: 'worker', scope: 'codeq:heartbeat' };
const NEED_ABANDON: AuthRequirement = { mode: 'worker', scope: 'codeq:abandon' };
const NEED_NACK: AuthRequirement = { mode: 'worker', scope: 'codeq:nack' };

export interface HotRouteDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  guard: AuthGuard;
  tasks: TasksService;
  leases: LeasesService;
}

type Req = FastifyRequest<{ Params: { id: string } }>;

class HotRoutes {
  constructor(private readonly d: HotRouteDeps) {}

  /** Errors before the handler (body parser: depth, size, framing) — as the global Nest filter answers them. */
  readonly onError = (err: unknown, req: FastifyRequest, reply: FastifyReply): void => {
    sendError(reply, req, err, this.d.log);
  };

  /** POST /v1/codeq/tasks → 202 task. */
  readonly create = async (req: Req, reply: FastifyReply): Promise<unknown> => {
    try {
      const p = await this.d.guard.authorize(NEED_CREATE, req.headers.authorization);
      const h = req.headers;
      const trace = { traceParent: h['traceparent'] as string | undefined, traceState: h['tracestate'] as string | undefined };
      const t = await this.d.tasks.create(p.tenantId, parseCreate(req.body, this.d.clock.now(), false, trace));
      return reply.code(202).send(taskToJson(t));
    } catch (e) {
      sendError(reply, req, e, this.d.log);
      return reply;
    }
  };

  /** GET /v1/codeq/tasks/:id → 200 task (+ progress). */
  readonly get = async (req: Req, reply: FastifyReply): Promise<unknown> => {
    try {
      const p = await this.d.guard.authorize(NEED_ANY, req.headers.authorization);
      const { task, progress } = await this.d.tasks.getWithProgress(p.tenantId, req.params.id);
      const o = taskToJson(task);
      if (progress !== undefined) o['progress'] = progress;
      return reply.code(200).send(o);
    } catch (e) {
      sendError(reply, req, e, this.d.log);
      return reply;
    }
  };

  /** POST /v1/codeq/tasks/:id/result → 200 result. */
  readonly result = async (req: Req, reply: FastifyReply): Promise<unknown> => {
    try {
      const p = await this.d.guard.authorize(NEED_RESULT, req.headers.authorization);
      const r = await this.d.tasks.submitResult(p.tenantId, p.subject, parseResult(req.params.id, req.body));
      return reply.code(200).send(resultToJson(r));
    } catch (e) {
      sendError(reply, req, e, this.d.log);
      return reply;
    }
  };

  /** POST /v1/codeq/tasks/claim → 200 task, or 204 when nothing was claimed (long-poll up to waitSeconds). */
  readonly claim = async (req: Req, reply: FastifyReply): Promise<unknown> => {
    try {
      const p = await this.d.guard.authorize(NEED_CLAIM, req.headers.authorization);
      const w = { tenantId: p.tenantId, workerId: p.subject, eventTypes: p.claims.eventTypes };
      const input = this.d.leases.authorise(w, parseClaim(req.body, this.d.config.defaultLeaseSeconds, false));
      // The disconnect signal is made only when the claim parks (a long-poll that found nothing).
      const tasks = await this.d.leases.claim(w, input, input.waitSeconds ? () => disconnectSignal(reply) : undefined);
      const t = tasks[0];
      if (!t) return reply.code(204).send();
      return reply.code(200).send(taskToJson(t));
    } catch (e) {
      sendError(reply, req, e, this.d.log);
      return reply;
    }
  };

  /** POST /v1/codeq/tasks/:id/heartbeat → 200 {ok, leaseUntil}. */
  readonly heartbeat = async (req: Req, reply: FastifyReply): Promise<unknown> => {
    try {
      const p = await this.d.guard.authorize(NEED_HEARTBEAT, req.headers.authorization);
      const t = await this.d.leases.heartbeat(p.tenantId, p.subject, parseHeartbeat(req.params.id, req.body, this.d.config.defaultLeaseSeconds));
      return reply.code(200).send({ ok: true, leaseUntil: taskToJson(t)['leaseUntil'] });
    } catch (e) {
      sendError(reply, req, e, this.d.log);
      return reply;
    }
  };

  /** POST /v1/codeq/tasks/:id/abandon → 200 {status}. */
  readonly abandon = async (req: Req, reply: FastifyReply): Promise<unknown> => {
    try {
      const p = await this.d.guard.authorize(NEED_ABANDON, req.headers.authorization);
      const status = await this.d.leases.abandon(p.tenantId, p.subject, parseAbandon(req.params.id, req.body));
      return reply.code(200).send({ status });
    } catch (e) {
      sendError(reply, req, e, this.d.log);
      return reply;
    }
  };

  /** POST /v1/codeq/tasks/:id/nack → 200 {delaySeconds, status}. */
  readonly nack = async (req: Req, reply: FastifyReply): Promise<unknown> => {
    try {
      const p = await this.d.guard.authorize(NEED_NACK, req.headers.authorization);
      const out = await this.d.leases.nack(p.tenantId, p.subject, parseNack(req.params.id, req.body));
      return reply.code(200).send({ delaySeconds: out.delaySeconds, status: out.status });
    } catch (e) {
      sendError(reply, req, e, this.d.log);
      return reply;
    }
  };
}

/** Registers the hot routes on `fastify` (before Nest registers its own; the paths are not in any Nest controller). */
export function registerHotRoutes(fastify: FastifyInstance, deps: HotRouteDeps): void {
  const h = new HotRoutes(deps);
  const base = '/v1/codeq/tasks';
  const route = (method: 'GET' | 'POST', url: string, handler: (req: Req, reply: FastifyReply) => Promise<unknown>) =>
    fastify.route({ method, url, handler, errorHandler: h.onError });
  route('POST', base, h.create);
  route('POST', `${base}/claim`, h.claim);
  route('GET', `${base}/:id`, h.get);
  route('POST', `${base}/:id/result`, h.result);
  route('POST', `${base}/:id/heartbeat`, h.heartbeat);
  route('POST', `${base}/:id/abandon`, h.abandon);
  route('POST', `${base}/:id/nack`, h.nack);
}
