/**
 * Runs the real codeQ server (`apps/server/dist/main.js`) as a child process on a free port with a
 * temp SQLite data directory (same approach as apps/server/test/process.ts; copied, because test
 * helpers are not shared across packages). Build the server first:
 *   bash scripts/pnpm.sh exec turbo run build --filter=@codeq/server...
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SERVER_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../server/dist/main.js');
export const TOKEN = 't';
export const WORKER_SCOPES = ['codeq:claim', 'codeq:heartbeat', 'codeq:abandon', 'codeq:nack', 'codeq:result', 'codeq:subscribe'];

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => ok(port));
    });
  });
}

export interface TestServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Everything the process printed (stdout + stderr). */
  output(): string;
  /** Stop the process (SIGTERM = graceful, SIGKILL = crash) and wait for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start the process again on the same port and data directory. */
  restart(): Promise<void>;
  /** Stop and delete the data directory. */
  dispose(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export function serverEnv(dataDir: string, port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '',
    PERSISTENCE_PROVIDER: 'sqlite',
    PERSISTENCE_CONFIG: JSON.stringify({ path: dataDir }),
    PRODUCER_AUTH_PROVIDER: 'static',
    PRODUCER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'p', raw: { role: 'ADMIN', tid: 'acme' } }),
    WORKER_AUTH_PROVIDER: 'static',
    WORKER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'w', scopes: WORKER_SCOPES, eventTypes: ['*'], raw: { tid: 'acme' } }),
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    // Fast retries and restarts for tests.
    BACKOFF_POLICY: 'fixed',
    BACKOFF_BASE_SECONDS: '1',
    BACKOFF_MAX_SECONDS: '1',
    CODEQ_SHUTDOWN_GRACE_SECONDS: '2',
    ...extra,
  };
}

async function waitReady(url: string, child: ChildProcess, out: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`codeQ server exited at start-up:\n${out()}`);
    try {
      const r = await fetch(url + '/readyz');
      if (r.status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`codeQ server did not become ready:\n${out()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a server; `env` overrides the defaults above. */
export async function startServer(opts: { env?: Record<string, string>; port?: number; dataDir?: string } = {}): Promise<TestServer> {
  if (!existsSync(SERVER_MAIN)) throw new Error(`${SERVER_MAIN} is missing: build the server first (bash scripts/pnpm.sh exec turbo run build --filter=@codeq/server...)`);
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'codeq-sdk-')));
  const port = opts.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  let log = '';
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const c = spawn(process.execPath, [SERVER_MAIN], { env: serverEnv(dataDir, port, opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    running.add(c);
    c.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    exited = new Promise<void>((r) => c.once('exit', () => (running.delete(c), r())));
    await waitReady(url, c, () => log);
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill(signal);
    const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };

  await launch();
  return {
    url,
    port,
    dataDir,
    output: () => log,
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
    dispose: async () => {
      await stop('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Minimal raw HTTP helper for assertions that should not go through the SDK under test. */
export async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(base + '/v1/codeq' + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}
