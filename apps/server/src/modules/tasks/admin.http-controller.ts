/** Admin routes (http-api §6.14–6.17), scoped to the admin's tenant. */
import { Body, Controller, Get, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { CodeqError } from '@codeq/proto/errors';
import type { Clock } from '../../common/tokens.js';
import { CLOCK } from '../../common/tokens.js';
import { Caller } from '../../common/http.js';
import type { Principal } from '../../domain/claims.js';
import { parseCleanup } from '../../domain/requests.js';
import { Auth, AuthGuard } from '../auth/auth.guard.js';
import { TasksService } from './tasks.service.js';
import { OperatorService } from './operator.service.js';

@Controller('v1/codeq')
@UseGuards(AuthGuard)
export class AdminHttpController {
  constructor(
    @Inject(TasksService) private readonly tasks: TasksService,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(OperatorService) private readonly ops: OperatorService,
  ) {}

  @Get('admin/queues')
  @Auth('admin')
  queues(@Caller() p: Principal) {
    return this.tasks.queueBuckets(p.tenantId);
  }

  @Get('admin/queues/:command')
  @Auth('admin')
  async queueStats(@Caller() p: Principal, @Param('command') command: string) {
    const c = command.trim();
    if (!c) throw new CodeqError('VALIDATION_FAILED', 'command is required');
    const [stats, paused] = await Promise.all([this.tasks.stats(p.tenantId, c), this.ops.isPaused(p.tenantId, c)]);
    return { ...stats, paused };
  }

  @Post('admin/tasks/cleanup')
  @HttpCode(200)
  @Auth('admin', undefined, { scope: 'admin', operation: 'cleanup' })
  async cleanup(@Caller() p: Principal, @Body() body: unknown) {
    const c = parseCleanup(body, this.clock.now());
    const deleted = await this.tasks.cleanup(p.tenantId, c.before, c.limit);
    return { before: c.beforeText, deleted, limit: c.limitEcho };
  }

  @Get('raft/status')
  @Auth('any')
  raftStatus() {
    return { enabled: false, numGroups: 0 };
  }
}
