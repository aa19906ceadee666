/**
 * Integration harness: the real server (same createApp as main.ts) on an ephemeral port with a
 * real SQLite database in a temp dir (or, with CODEQ_TEST_PG_URL, a fresh PostgreSQL database), and
 * a small HTTP client. Servers left running fail the test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type CodeqApp } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import type { YamlKey } from '../src/config/keys.js';
import { createLogger } from '../src/common/logger.js';
import { PG_URL, databaseFor, dropDatabase, ensureDatabase } from './pg.js';

export const ALL_SCOPES = ['codeq:claim', 'codeq:heartbeat', 'codeq:abandon', 'codeq:nack', 'codeq:result', 'codeq:subscribe'];

/** Tokens of the default test identities (tenants `acme` and `globex`). */
export const T = {
  producer: 'acme-producer', // admin of acme
  user: 'acme-user', // non-admin producer of acme
  globexProducer: 'globex-producer', // admin of globex
  worker: 'acme-worker', // all scopes, any command
  worker2: 'acme-worker-2', // another worker of acme
  globexWorker: 'globex-worker',
  limited: 'acme-limited', // only codeq:claim, only command ONLY_THIS
} as const;

const staticCfg = (token: string, subject: string, extra: Record<string, unknown>) => ({ type: 'static', config: { token, subject, ...extra } });

export const DEFAULT_AUTH: Partial<Record<YamlKey, unknown>> = {
  producerAuthProvider: 'multi',
  producerAuthConfig: {
    providers: [
      staticCfg(T.producer, 'acme-producer', { raw: { role: 'ADMIN', tid: 'acme' } }),
      staticCfg(T.user, 'acme-user', { raw: { tid: 'acme' } }),
      staticCfg(T.globexProducer, 'globex-producer', { raw: { role: 'ADMIN', tid: 'globex' } }),
    ],
  },
  workerAuthProvider: 'multi',
  workerAuthConfig: {
    providers: [
      staticCfg(T.worker, 'worker-1', { scopes: ALL_SCOPES, eventTypes: ['*'], raw: { tid: 'acme' } }),
      staticCfg(T.worker2, 'worker-2', { scopes: ALL_SCOPES, eventTypes: ['*'], raw: { tid: 'acme' } }),
      staticCfg(T.globexWorker, 'globex-worker', { scopes: ALL_SCOPES, eventTypes: ['*'], raw: { tid: 'globex' } }),
      staticCfg(T.limited, 'limited', { scopes: ['codeq:claim'], eventTypes: ['ONLY_THIS'], raw: { tid: 'acme' } }),
    ],
  },
};

export interface RunningServer {
  url: string;
  dir: string;
  app: CodeqApp;
  stop(opts?: { keepDir?: boolean }): Promise<void>;
}

const running = new Set<CodeqApp>();

export async function startServer(
  overrides: Partial<Record<YamlKey, unknown>> = {},
  opts: {
    dir?: string;
    /** Force an engine (default: PostgreSQL when CODEQ_TEST_PG_URL is set, else SQLite). */ engine?: 'sqlite' | { postgresUrl: string };
    /** Time source of the server (default: the system clock). */
    clock?: { now(): number };
  } = {},
): Promise<RunningServer> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'codeq-test-')));
  // With CODEQ_TEST_PG_URL every server runs on PostgreSQL: one database per data dir.
  const forced = opts.engine;
  const usePg = forced === undefined ? !!PG_URL : forced !== 'sqlite';
  const engine: Partial<Record<YamlKey, unknown>> =
    forced !== undefined && forced !== 'sqlite'
      ? { persistenceProvider: 'postgres', persistenceConfig: { url: forced.postgresUrl, poolSize: 8 } }
      : usePg
        ? { persistenceProvider: 'postgres', persistenceConfig: { url: await ensureDatabase(databaseFor(dir)), poolSize: 8 } }
        : forced === 'sqlite'
          ? { persistenceProvider: 'sqlite', persistenceConfig: { path: join(dir, 'data'), fsyncOnCommit: false } }
          : {};
  const config = loadConfig({
    env: {},
    overrides: {
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      persistenceConfig: { path: join(dir, 'data'), fsyncOnCommit: false },
      localArtifactsDir: join(dir, 'artifacts'),
      ...DEFAULT_AUTH,
      ...overrides,
      ...engine,
    },
  });
  const app = await createApp(config, { logger: createLogger({ logLevel: 'silent', logFormat: 'json' }), ...(opts.clock ? { clock: opts.clock } : {}) });
  const url = await app.listen();
  running.add(app);
  return {
    url,
    dir,
    app,
    async stop({ keepDir = false } = {}) {
      running.delete(app);
      await app.close();
      if (!keepDir) {
        await rm(dir, { recursive: true, force: true });
        if (usePg && forced === undefined) await dropDatabase(databaseFor(dir));
      }
    },
  };
}

afterAll(() => {
  if (running.size) {
    const n = running.size;
    for (const a of running) void a.close();
    running.clear();
    throw new Error(`test left ${n} server(s) running`);
  }
});

export interface Res<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

/** HTTP call with a bearer token; `raw` sends a string body as-is. */
export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Res<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers['authorization'] = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = body;
  if (opts.signal) init.signal = opts.signal;
  const r = await fetch(base + path, init);
  const text = await r.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: r.status, body: parsed as T, text, headers: r.headers };
}

/** A client bound to one server. */
export function client(base: string) {
  return {
    create: (body: unknown, token: string = T.producer) => call(base, 'POST', '/v1/codeq/tasks', { token, body }),
    claim: (body: unknown, token: string = T.worker) => call(base, 'POST', '/v1/codeq/tasks/claim', { token, body }),
    result: (id: string, body: unknown, token: string = T.worker) => call(base, 'POST', `/v1/codeq/tasks/${id}/result`, { token, body }),
    get: (id: string, token: string = T.producer) => call(base, 'GET', `/v1/codeq/tasks/${id}`, { token }),
    getResult: (id: string, token: string = T.producer, wait?: number) =>
      call(base, 'GET', `/v1/codeq/tasks/${id}/result${wait !== undefined ? `?waitSeconds=${wait}` : ''}`, { token }),
    heartbeat: (id: string, body: unknown, token: string = T.worker) => call(base, 'POST', `/v1/codeq/tasks/${id}/heartbeat`, { token, body }),
    nack: (id: string, body: unknown, token: string = T.worker) => call(base, 'POST', `/v1/codeq/tasks/${id}/nack`, { token, body }),
    abandon: (id: string, token: string = T.worker, body?: unknown) => call(base, 'POST', `/v1/codeq/tasks/${id}/abandon`, { token, body }),
    call: (method: string, path: string, opts: Parameters<typeof call>[3] = {}) => call(base, method, path, opts),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
