/**
 * HTTP ↔ domain for lease routes (http-api §6.3–6.7). The hot ones (claim, heartbeat, abandon, nack)
 * are registered directly on Fastify: modules/hot-routes/hot-routes.ts.
 */
import { Body, Controller, HttpCode, Inject, Param, Post, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Config } from '../../config/config.js';
import { Caller } from '../../common/http.js';
import { CONFIG } from '../../common/tokens.js';
import type { Principal } from '../../domain/claims.js';
import { parseClaim } from '../../domain/requests.js';
import { taskToJson } from '../../domain/task.js';
import { parseLogLines, parseProgress } from '../../domain/task-notes.js';
import { Auth, AuthGuard } from '../auth/auth.guard.js';
import { LeasesService, type WorkerIdentity } from './leases.service.js';

const identity = (p: Principal): WorkerIdentity => ({ tenantId: p.tenantId, workerId: p.subject, eventTypes: p.claims.eventTypes });

@Controller('v1/codeq/tasks')
@UseGuards(AuthGuard)
export class LeasesHttpController {
  constructor(@Inject(LeasesService) private readonly leases: LeasesService, @Inject(CONFIG) private readonly config: Config) {}

  @Post('claim/batch')
  @HttpCode(200)
  @Auth('worker', 'codeq:claim', { scope: 'worker', operation: 'claim' })
  async claimBatch(@Caller() p: Principal, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const w = identity(p);
    const tasks = await this.leases.claim(w, this.leases.authorise(w, parseClaim(body, this.config.defaultLeaseSeconds, true)));
    if (!tasks.length) {
      void reply.status(204);
      return undefined;
    }
    return { tasks: tasks.map(taskToJson) };
  }

  /** The holder's progress (issue 17): `{"progress": <number|object>, "leaseId"?}`, lease-fenced like a heartbeat. */
  @Post(':id/progress')
  @HttpCode(200)
  @Auth('worker', 'codeq:heartbeat')
  async progress(@Caller() p: Principal, @Param('id') id: string, @Body() body: unknown) {
    const { value, leaseId } = parseProgress(body);
    await this.leases.progress(p.tenantId, leaseId ? { workerId: p.subject, leaseId } : { workerId: p.subject }, id, value);
    return { ok: true };
  }

  /** The holder appends log lines (issue 17): `{"lines": [...], "leaseId"?}`. */
  @Post(':id/logs')
  @HttpCode(200)
  @Auth('worker', 'codeq:heartbeat')
  async logs(@Caller() p: Principal, @Param('id') id: string, @Body() body: unknown) {
    const { lines, leaseId } = parseLogLines(body, Date.now());
    await this.leases.appendLogs(p.tenantId, leaseId ? { workerId: p.subject, leaseId } : { workerId: p.subject }, id, lines);
    return { ok: true, lines: lines.length };
  }
}
