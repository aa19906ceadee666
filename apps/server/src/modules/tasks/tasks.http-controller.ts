/**
 * HTTP ↔ domain for task routes (http-api §6.1, 6.2, 6.8–6.11). The hot ones (create, get, result)
 * are registered directly on Fastify: modules/hot-routes/hot-routes.ts.
 */
import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import type { FastifyReply } from 'fastify';
import { CodeqError } from '@codeq/proto/errors';
import { Caller, disconnectSignal } from '../../common/http.js';
import { CLOCK, type Clock } from '../../common/tokens.js';
import type { Principal } from '../../domain/claims.js';
import { parseBatchCreate, parseBatchResults, MAX_RESULT_WAIT_SECONDS } from '../../domain/requests.js';
import { resultToJson, taskToJson } from '../../domain/task.js';
import { Auth, AuthGuard } from '../auth/auth.guard.js';
import { TasksService } from './tasks.service.js';
import { logLineToJson, MAX_LOG_LINES } from '../../domain/task-notes.js';

function intParam(v: string, name: string, min: number, max: number): number {
  const t = v.trim();
  const n = /^\d+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new CodeqError('VALIDATION_FAILED', `invalid '${name}' (an integer ${min}..${max})`, { field: name });
  return n;
}

@Controller('v1/codeq/tasks')
@UseGuards(AuthGuard)
export class TasksHttpController {
  constructor(
    @Inject(TasksService) private readonly tasks: TasksService,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Post('batch')
  @HttpCode(200)
  @Auth('producer', undefined, { scope: 'producer', operation: 'create_task' })
  async createBatch(@Caller() p: Principal, @Body() body: unknown, @Headers('traceparent') traceParent?: string, @Headers('tracestate') traceState?: string) {
    const items = parseBatchCreate(body, this.clock.now(), { traceParent, traceState });
    const results = await this.tasks.createBatch(p.tenantId, items);
    return { results: results.map((r) => ('task' in r ? { task: taskToJson(r.task) } : { error: r.error })) };
  }

  @Post('batch/results')
  @HttpCode(200)
  @Auth('worker', 'codeq:result')
  async submitResults(@Caller() p: Principal, @Body() body: unknown) {
    const items = parseBatchResults(body);
    const results = await this.tasks.submitResults(p.tenantId, p.subject, items);
    return { results: results.map((r) => ('result' in r ? { taskId: r.taskId, result: resultToJson(r.result) } : r)) };
  }

  /** The task's log (issue 17), oldest first: `?after=<n>` (line number) and `?limit=` (1..200, default 200). */
  @Get(':id/logs')
  @Auth('any')
  async logs(@Caller() p: Principal, @Param('id') id: string, @Query('after') after: string | undefined, @Query('limit') limit: string | undefined) {
    const afterN = after === undefined ? 0 : intParam(after, 'after', 0, 2 ** 31 - 1);
    const n = limit === undefined ? MAX_LOG_LINES : intParam(limit, 'limit', 1, MAX_LOG_LINES);
    const lines = await this.tasks.logs(p.tenantId, id, afterN, n);
    return { taskId: id, lines: lines.map(logLineToJson) };
  }

  @Get(':id/result')
  @Auth('any')
  async getResult(@Caller() p: Principal, @Param('id') id: string, @Query('waitSeconds') wait: string | undefined, @Res({ passthrough: true }) reply: FastifyReply) {
    const n = wait !== undefined && /^-?\d+$/.test(wait.trim()) ? Number(wait.trim()) : 0;
    const waitSeconds = n <= 0 ? 0 : Math.min(n, MAX_RESULT_WAIT_SECONDS);
    const { task, result } = await this.tasks.getResult(p.tenantId, id, waitSeconds, waitSeconds ? disconnectSignal(reply) : undefined);
    return { result: resultToJson(result), task: taskToJson(task) };
  }

  @Get(':id/artifacts/:name')
  @Auth('any')
  async artifact(@Caller() p: Principal, @Param('id') id: string, @Param('name') name: string, @Res() reply: FastifyReply) {
    const { file } = await this.tasks.artifact(p.tenantId, id, name);
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch {
      throw new CodeqError('NOT_FOUND', 'artifact not found');
    }
    void reply.header('content-type', 'application/octet-stream').header('content-disposition', `attachment; filename="${name.replace(/"/g, '')}"`).send(data);
  }
}
