/** GET /metrics (Prometheus text; bearer token when CODEQ_METRICS_TOKEN is set), /healthz and /readyz. */
import { timingSafeEqual } from 'node:crypto';
import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CodeqError } from '@codeq/proto/errors';
import { CONFIG, TASK_STORE } from '../../common/tokens.js';
import type { Config } from '../../config/config.js';
import type { TaskStore } from '../../domain/task-store.js';
import { MetricsService } from './metrics.service.js';

@Controller()
export class MetricsHttpController {
  constructor(
    @Inject(MetricsService) private readonly metrics: MetricsService,
    @Inject(TASK_STORE) private readonly store: TaskStore,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  @Get('metrics')
  async scrape(@Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    // Optional bearer token (CODEQ_METRICS_TOKEN, issue 12 item 10); compared in constant time.
    if (this.config.metricsToken) {
      const h = req.headers.authorization ?? '';
      const given = Buffer.from(h.startsWith('Bearer ') ? h.slice(7).trim() : '');
      const want = Buffer.from(this.config.metricsToken);
      if (given.length !== want.length || !timingSafeEqual(given, want)) throw new CodeqError('UNAUTHENTICATED', 'missing or invalid metrics token');
    }
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
