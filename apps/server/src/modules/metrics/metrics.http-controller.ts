/** GET /metrics (unauthenticated Prometheus text), /healthz and /readyz. */
import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { TASK_STORE } from '../../common/tokens.js';
import type { TaskStore } from '../../domain/task-store.js';
import { MetricsService } from './metrics.service.js';

@Controller()
export class MetricsHttpController {
  constructor(@Inject(MetricsService) private readonly metrics: MetricsService, @Inject(TASK_STORE) private readonly store: TaskStore) {}

  @Get('metrics')
  async scrape(@Res({ passthrough: true }) reply: FastifyReply) {
    void reply.header('content-type', this.metrics.registry.contentType);
    return this.metrics.registry.metrics();
  }

  /** Liveness: the process serves HTTP. */
  @Get('healthz')
  health() {
    return { status: 'ok' };
  }

  /** Readiness: the storage engine is open and committing. */
  @Get('readyz')
  ready(@Res({ passthrough: true }) reply: FastifyReply) {
    if (this.store.healthy()) return { status: 'ready' };
    void reply.status(503);
    return { status: 'unavailable', error: 'storage not ready' };
  }
}
