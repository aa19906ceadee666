/**
 * createApp(config): the one factory used by main.ts and by the tests. Opens the storage engine,
 * builds the Nest application on Fastify, and returns it with a close() that shuts down in order:
 * wake long-polls → stop HTTP (finishing in-flight requests) → flush and close the store.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Global, Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyRequest } from 'fastify';
import type { Config } from './config/config.js';
import { createLogger, type Logger } from './common/logger.js';
// Nest routes Fastify's own errors (413, bad framing) through this global filter as well.
import { HttpExceptionFilter } from './common/http-exception.filter.js';
import { INVALID_JSON, firstJsonValueEnd, trailingSlashTarget } from './common/http.js';
import { escapeHtml } from './domain/go-json.js';
import { depthError, jsonTooDeep } from './domain/input-guards.js';
import { CLOCK, CONFIG, LOGGER, SCHEDULE_STORE, TASK_STORE, TOPIC_STORE, systemClock, type Clock } from './common/tokens.js';
import { SchedulesModule } from './modules/schedules/schedules.module.js';
import type { TaskStore } from './domain/task-store.js';
import { openEngine, type EngineStore } from './persistence/engine.js';
import { AuthModule } from './modules/auth/auth.module.js';
import { LeasesModule } from './modules/leases/leases.module.js';
import { MetricsModule } from './modules/metrics/metrics.module.js';
import { TasksModule } from './modules/tasks/tasks.module.js';
import { TenantsModule } from './modules/tenants/tenants.module.js';
import { WebhooksModule } from './modules/webhooks/webhooks.module.js';
import { StreamsModule } from './modules/streams/streams.module.js';
import { DashboardModule } from './modules/dashboard/dashboard.module.js';
import { StreamsService } from './modules/streams/streams.service.js';
import { registerHotRoutes } from './modules/hot-routes/hot-routes.js';
import { AuthGuard } from './modules/auth/auth.guard.js';
import { TasksService } from './modules/tasks/tasks.service.js';
import { LeasesService } from './modules/leases/leases.service.js';

export interface CreateAppOptions {
  logger?: Logger;
  clock?: Clock;
}

export interface CodeqApp {
  app: NestFastifyApplication;
  config: Config;
  store: TaskStore;
  log: Logger;
  /** Bound gRPC stream ports (0 when the listener is off). */
  streams: { workerPort: number; producerPort: number };
  /** Listen on config.host:config.port (0 = ephemeral); returns the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

@Global()
@Module({})
class CoreModule {
  static forRoot(config: Config, store: EngineStore, log: Logger, clock: Clock): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: TASK_STORE, useValue: store },
        { provide: LOGGER, useValue: log },
        { provide: CLOCK, useValue: clock },
        { provide: TOPIC_STORE, useValue: store.topics() },
        { provide: SCHEDULE_STORE, useValue: store.schedules() },
      ],
      exports: [CONFIG, TASK_STORE, LOGGER, CLOCK, TOPIC_STORE, SCHEDULE_STORE],
    };
  }
}

function rootModule(config: Config, store: EngineStore, log: Logger, clock: Clock): DynamicModule {
  @Module({})
  class AppModule {}
  return {
    module: AppModule,
    imports: [CoreModule.forRoot(config, store, log, clock), TenantsModule, AuthModule, MetricsModule, TasksModule, LeasesModule, WebhooksModule, StreamsModule, DashboardModule, SchedulesModule],
  };
}

/** 32-hex request ids: a random per-process prefix and a counter (cheap, unique, unguessable enough for logs). */
function requestIdGenerator(): () => string {
  const prefix = randomBytes(8).toString('hex');
  let n = 0;
  return () => prefix + (n++).toString(16).padStart(16, '0');
}

export async function createApp(config: Config, opts: CreateAppOptions = {}): Promise<CodeqApp> {
  const log = opts.logger ?? createLogger(config);
  const clock = opts.clock ?? systemClock;
  const p = config.persistence;
  const store = (await openEngine(p, { log, clock })).tasks;
  if (config.env === 'dev') log.info({}, 'env=dev (set ENV=production for production deployments)');

  let app: NestFastifyApplication;
  try {
    const nextRequestId = requestIdGenerator();
    const adapter = new FastifyAdapter({
      bodyLimit: config.maxBodyBytes,
      requestIdHeader: 'x-request-id',
      genReqId: nextRequestId,
      keepAliveTimeout: 75_000,
      // A client must send its whole request (headers and body) within this time (issue 12 item 1):
      // slow or stalled uploads cannot hold sockets and memory forever.
      requestTimeout: 60_000,
      forceCloseConnections: 'idle',
      logger: false,
      // No implicit HEAD twin of every GET route: upstream (gin) answers HEAD with its plain-text
      // 404 like any method it has no route for (http-api §1.1).
      exposeHeadRoutes: false,
    });
    app = await NestFactory.create<NestFastifyApplication>(rootModule(config, store, log, clock), adapter, { logger: false, abortOnError: false, bodyParser: false });
    const fastify = app.getHttpAdapter().getInstance();
    // Bodies are JSON whatever the Content-Type (http-api §1.2). A body that is not JSON reaches
    // the route as a marker, so each route answers with its own upstream message.
    fastify.removeAllContentTypeParsers();
    fastify.addContentTypeParser('*', { parseAs: 'string' }, (req: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      // A body that is empty or only whitespace counts as absent (trim() only when it may be).
      const c = text.charCodeAt(0);
      if (!text.length || ((c === 32 || c === 9 || c === 10 || c === 13) && !text.trim())) return done(null, undefined);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Only the first JSON value counts; bytes after it are ignored (http-api §1.2). The topic
        // PUT (our only PUT route) is strict: exactly one JSON value.
        const end = req.method === 'PUT' ? -1 : firstJsonValueEnd(text);
        if (end < 0) return done(null, INVALID_JSON);
        try {
          parsed = JSON.parse(text.slice(0, end));
        } catch {
          return done(null, INVALID_JSON);
        }
      }
      // Deeply nested JSON is refused here, before any route sees it (issue 12 item 4).
      if (jsonTooDeep(parsed)) return done(depthError());
      done(null, parsed);
    });
    // Every answer carries the request id (the caller's X-Request-Id, else a generated one). Set on
    // the raw response when the request arrives, before Fastify sees it: Fastify then takes the id
    // from the header (requestIdHeader), and no onSend hook runs per request.
    fastify.server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && given ? given : nextRequestId();
      req.headers['x-request-id'] = id;
      res.setHeader('x-request-id', id);
    });
    // JSON answers escape `<` `>` `&` (and U+2028/2029) inside strings as Go does (http-api §1.3);
    // the same JSON value, byte-identical to upstream's text.
    fastify.setReplySerializer((payload) => escapeHtml(JSON.stringify(payload) ?? ''));
    // A known route asked with a trailing slash is redirected to the path without it, before
    // authentication: 301 for GET, 307 otherwise (http-api §1.1, gin's behaviour).
    fastify.addHook('onRequest', (req, reply, done) => {
      const target = trailingSlashTarget(req.method, req.url);
      if (target === null) return done();
      void reply.code(req.method === 'GET' ? 301 : 307).header('location', target).send();
    });
    app.useGlobalFilters(new HttpExceptionFilter(log));
    // The hot task routes go straight to Fastify (same guard, services and error bodies; issue 13).
    registerHotRoutes(fastify, { config, clock, log, guard: app.get(AuthGuard), tasks: app.get(TasksService), leases: app.get(LeasesService) });
    await app.init();
  } catch (e) {
    await store.close();
    throw e;
  }

  // gRPC streams: their own listeners, started only when their address is set.
  const streamsService = app.get(StreamsService);
  try {
    await streamsService.start();
  } catch (e) {
    await app.close();
    await store.close();
    throw e;
  }
  const streams = streamsService.ports;

  let closing: Promise<void> | null = null;
  return {
    app,
    config,
    store,
    log,
    streams,
    async listen() {
      await app.listen(config.port, config.host);
      const addr = app.getHttpServer().address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
      log.info({ port, host: config.host }, 'HTTP listener started');
      return `http://${host}:${port}`;
    },
    close() {
      closing ??= (async () => {
        store.drain();
        const grace = Math.min(5000, config.shutdownGraceSeconds * 1000);
        await streamsService.stop(grace);
        // Keep-alive connections that finished a request after close began are not idle at that
        // moment and can hold close() open for the client's keep-alive time: past the grace
        // period every remaining connection is closed (found by bench/soak.mjs).
        const httpServer = app.getHttpServer() as { closeAllConnections?: () => void };
        const force = setTimeout(() => httpServer.closeAllConnections?.(), grace);
        try {
          await app.close();
        } finally {
          clearTimeout(force);
        }
        await store.close();
      })();
      return closing;
    },
  };
}
