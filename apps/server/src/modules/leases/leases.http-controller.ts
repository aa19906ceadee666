/** HTTP ↔ domain for lease routes (http-api §6.3–6.7). */
import { Body, Controller, HttpCode, Inject, Param, Post, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Config } from '../../config/config.js';
import { Caller, disconnectSignal } from '../../common/http.js';
import { CONFIG } from '../../common/tokens.js';
import type { Principal } from '../../domain/claims.js';
import { parseAbandon, parseClaim, parseHeartbeat, parseNack } from '../../domain/requests.js';
import { taskToJson } from '../../domain/task.js';
import { parseLogLines, parseProgress } from '../../domain/task-notes.js';
import { Auth, AuthGuard } from '../auth/auth.guard.js';
import { LeasesService, type WorkerIdentity } from './leases.service.js';

const identity = (p: Principal): WorkerIdentity => ({ tenantId: p.tenantId, workerId: p.subject, eventTypes: p.claims.eventTypes });

@Controller('v1/codeq/tasks')
@UseGuards(AuthGuard)
export class LeasesHttpController {
  constructor(@Inject(LeasesService) private readonly leases: LeasesService, @Inject(CONFIG) private readonly config: Config) {}

  @Post('claim')
  @HttpCode(200)
  @Auth('worker', 'codeq:claim', { scope: 'worker', operation: 'claim' })
  async claim(@Caller() p: Principal, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const w = identity(p);
    const input = this.leases.authorise(w, parseClaim(body, this.config.defaultLeaseSeconds, false));
    const tasks = await this.leases.claim(w, input, input.waitSeconds ? () => disconnectSignal(reply) : undefined);
    const t = tasks[0];
    if (!t) {
      void reply.status(204);
      return undefined;
    }
    return taskToJson(t);
  }

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

  @Post(':id/heartbeat')
  @HttpCode(200)
  @Auth('worker', 'codeq:heartbeat')
  async heartbeat(@Caller() p: Principal, @Param('id') id: string, @Body() body: unknown) {
    const t = await this.leases.heartbeat(p.tenantId, p.subject, parseHeartbeat(id, body, this.config.defaultLeaseSeconds));
    return { ok: true, leaseUntil: taskToJson(t)['leaseUntil'] };
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

  @Post(':id/abandon')
  @HttpCode(200)
  @Auth('worker', 'codeq:abandon')
  async abandon(@Caller() p: Principal, @Param('id') id: string, @Body() body: unknown) {
    const status = await this.leases.abandon(p.tenantId, p.subject, parseAbandon(id, body));
    return { status };
  }

  @Post(':id/nack')
  @HttpCode(200)
  @Auth('worker', 'codeq:nack')
  async nack(@Caller() p: Principal, @Param('id') id: string, @Body() body: unknown) {
    const out = await this.leases.nack(p.tenantId, p.subject, parseNack(id, body));
    return { delaySeconds: out.delaySeconds, status: out.status };
  }
}
