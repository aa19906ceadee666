/** Operator routes (issue 14; docs/operator-api.md): list, cancel, pause/resume, commands, dead letters. */
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, UseGuards } from '@nestjs/common';
import { Caller } from '../../common/http.js';
import type { Principal } from '../../domain/claims.js';
import { parseListQuery, parseRedrive } from '../../domain/operator.js';
import { taskToJson, taskToListJson } from '../../domain/task.js';
import { Auth, AuthGuard } from '../auth/auth.guard.js';
import { OperatorService } from './operator.service.js';

@Controller('v1/codeq')
@UseGuards(AuthGuard)
export class OperatorHttpController {
  constructor(@Inject(OperatorService) private readonly ops: OperatorService) {}

  @Get('tasks')
  @Auth('producer')
  async list(@Caller() p: Principal, @Query() q: Record<string, unknown>) {
    const page = await this.ops.list(p.tenantId, parseListQuery(q ?? {}));
    return { tasks: page.tasks.map(taskToListJson), nextCursor: page.nextCursor };
  }

  @Post('tasks/:id/cancel')
  @HttpCode(200)
  @Auth('producer')
  async cancel(@Caller() p: Principal, @Param('id') id: string) {
    return taskToJson(await this.ops.cancel(p.tenantId, id));
  }

  @Post('admin/queues/:command/pause')
  @HttpCode(200)
  @Auth('admin')
  pause(@Caller() p: Principal, @Param('command') command: string) {
    return this.ops.setPaused(p.tenantId, command, true);
  }

  @Post('admin/queues/:command/resume')
  @HttpCode(200)
  @Auth('admin')
  resume(@Caller() p: Principal, @Param('command') command: string) {
    return this.ops.setPaused(p.tenantId, command, false);
  }

  @Get('admin/commands')
  @Auth('admin')
  async commands(@Caller() p: Principal) {
    return { commands: await this.ops.commands(p.tenantId) };
  }

  @Get('admin/dlq')
  @Auth('admin')
  async dlq(@Caller() p: Principal, @Query() q: Record<string, unknown>) {
    const input = parseListQuery(q ?? {}, true);
    const page = await this.ops.list(p.tenantId, input);
    return { tasks: page.tasks.map(taskToListJson), nextCursor: page.nextCursor };
  }

  @Post('admin/dlq/redrive')
  @HttpCode(200)
  @Auth('admin', undefined, { scope: 'admin', operation: 'dlq_redrive' })
  redrive(@Caller() p: Principal, @Body() body: unknown) {
    return this.ops.redrive(p.tenantId, parseRedrive(body));
  }
}
