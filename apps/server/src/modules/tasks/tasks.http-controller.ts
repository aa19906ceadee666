/** HTTP ↔ domain for task routes (http-api §6.1, 6.2, 6.8–6.11). */
import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import type { FastifyReply } from 'fastify';
import { CodeqError } from '@codeq/proto/errors';
import { Caller, disconnectSignal } from '../../common/http.js';
import type { Principal } from '../../domain/claims.js';
import { parseBatchCreate, parseBatchResults, MAX_RESULT_WAIT_SECONDS } from '../../domain/requests.js';
import { resultToJson, taskToJson } from '../../domain/task.js';
import { Auth, AuthGuard } from '../auth/auth.guard.js';
import { TasksService } from './tasks.service.js';

@Controller('v1/codeq/tasks')
@UseGuards(AuthGuard)
export class TasksHttpController {
  constructor(@Inject(TasksService) private readonly tasks: TasksService) {}

  @Post()
  @HttpCode(202)
  @Auth('producer', undefined, { scope: 'producer', operation: 'create_task' })
  async create(@Caller() p: Principal, @Body() body: unknown, @Headers('traceparent') traceParent?: string, @Headers('tracestate') traceState?: string) {
    return taskToJson(await this.tasks.create(p.tenantId, body, { traceParent, traceState }));
  }

  @Post('batch')
  @HttpCode(200)
  @Auth('producer', undefined, { scope: 'producer', operation: 'create_task' })
  async createBatch(@Caller() p: Principal, @Body() body: unknown, @Headers('traceparent') traceParent?: string, @Headers('tracestate') traceState?: string) {
    const items = parseBatchCreate(body);
    const results = await this.tasks.createBatch(p.tenantId, items, { traceParent, traceState });
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

  @Get(':id')
  @Auth('any')
  async get(@Caller() p: Principal, @Param('id') id: string) {
    return taskToJson(await this.tasks.get(p.tenantId, id));
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

  @Post(':id/result')
  @HttpCode(200)
  @Auth('worker', 'codeq:result')
  async submitResult(@Caller() p: Principal, @Param('id') id: string, @Body() body: unknown) {
    return resultToJson(await this.tasks.submitResult(p.tenantId, p.subject, id, body));
  }
}
