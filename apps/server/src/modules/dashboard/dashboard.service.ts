/**
 * The web dashboard's server side: throughput counters fed from task events, and the built SPA
 * served at /ui (precompressed, cached; a clear 404 when the dashboard is not installed).
 */
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/config.js';
import { CLOCK, CONFIG, LOGGER, type Clock } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import { TaskEvents } from '../tasks/task-events.js';
import { ThroughputRecorder, type ThroughputReport } from './throughput.js';
import { loadStaticFiles, pickEncoding, resolveDashboardDir, type StaticFile } from './static-files.js';

const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

@Injectable()
export class DashboardService implements OnModuleInit {
  private readonly throughput = new ThroughputRecorder();
  private files: Map<string, StaticFile> | null = null;
  private missing = '';

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(TaskEvents) private readonly events: TaskEvents,
    @Inject(HttpAdapterHost) private readonly http: HttpAdapterHost,
  ) {}

  onModuleInit(): void {
    this.events.onCreated((t) => this.throughput.record(t.tenantId, 'created', this.clock.now()));
    this.events.onFinished((t, r) => {
      if (r.status === 'COMPLETED') this.throughput.record(t.tenantId, 'completed', this.clock.now());
      else if (r.status === 'FAILED') this.throughput.record(t.tenantId, 'failed', this.clock.now());
    });
    this.loadFiles();
    this.routes(this.http.httpAdapter.getInstance<FastifyInstance>());
  }

  report(tenantId: string, minutes: number): ThroughputReport {
    return this.throughput.report(tenantId, minutes, this.clock.now());
  }

  private loadFiles(): void {
    const configured = this.config.dashboardDir;
    if (configured === 'off') {
      this.missing = 'the dashboard is turned off (CODEQ_DASHBOARD_DIR=off)';
      return;
    }
    const dir = resolveDashboardDir(configured);
    try {
      this.files = dir ? loadStaticFiles(dir) : null;
    } catch (e) {
      this.log.warn({ dir, err: (e as Error).message }, 'dashboard files could not be read');
      this.files = null;
    }
    if (this.files) {
      this.log.info({ dir, files: this.files.size }, 'dashboard served at /ui');
      return;
    }
    this.missing = `the dashboard is not installed (no index.html in ${dir ?? 'the @codeq/dashboard package'}): build it with 'bash scripts/pnpm.sh exec turbo run build --filter=@codeq/dashboard' or set CODEQ_DASHBOARD_DIR`;
    if (configured) this.log.warn({ dir }, 'CODEQ_DASHBOARD_DIR has no index.html: /ui answers 404');
  }

  private routes(fastify: FastifyInstance): void {
    const handler = (req: FastifyRequest<{ Params: { '*'?: string } }>, reply: FastifyReply) => this.serve(req, reply);
    fastify.get('/ui', handler);
    fastify.get('/ui/*', handler);
  }

  private serve(req: FastifyRequest<{ Params: { '*'?: string } }>, reply: FastifyReply): FastifyReply {
    void reply.header('x-content-type-options', 'nosniff');
    if (!this.files) return reply.code(404).send({ error: this.missing, code: 'NOT_FOUND', requestId: req.id });
    let path = req.params['*'] ?? '';
    try {
      path = decodeURIComponent(path);
    } catch {
      return reply.code(400).send({ error: 'invalid path', code: 'VALIDATION_FAILED', requestId: req.id });
    }
    let f = path && !path.endsWith('/') ? this.files.get(path) : undefined;
    if (!f) {
      // A file-like path that does not exist is a 404; anything else is a client route of the SPA.
      if (/\.[a-z0-9]+$/i.test(path)) return reply.code(404).send({ error: `no such dashboard file: ${path}`, code: 'NOT_FOUND', requestId: req.id });
      f = this.files.get('index.html')!;
    }
    void reply
      .header('content-type', f.type)
      .header('etag', f.etag)
      .header('vary', 'accept-encoding')
      .header('cache-control', f.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (f.type.startsWith('text/html')) {
      void reply.header('content-security-policy', CSP).header('x-frame-options', 'DENY').header('referrer-policy', 'no-referrer');
    }
    if (req.headers['if-none-match'] === f.etag) return reply.code(304).send();
    const enc = pickEncoding(req.headers['accept-encoding'], f);
    if (enc) void reply.header('content-encoding', enc);
    return reply.send(enc === 'br' ? f.br : enc === 'gzip' ? f.gzip : f.body);
  }
}
