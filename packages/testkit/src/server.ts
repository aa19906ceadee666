/**
 * Runs the real codeQ server as a child process on free ports (HTTP, worker stream, producer
 * stream) with a temp SQLite data directory. {@link startCodeq} (codeq.ts) is the public face;
 * `startServer` is the lower-level form the monorepo's own SDK and CLI suites use (restart, crash,
 * raw environment). Where the server comes from: see {@link resolveServerEntry}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The server entry point of this checkout (packages/testkit/dist → apps/server/dist/main.js). */
export const SERVER_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../apps/server/dist/main.js');

/**
 * The codeQ server entry (`main.js`) to run, first found of: the `serverEntry` option, the
 * `CODEQ_SERVER_ENTRY` environment variable, an installed `@codeq/server` package (its `main`),
 * and the server build of the codeQ monorepo this testkit sits in.
 */
export function resolveServerEntry(explicit?: string): string {
  const given = explicit ?? process.env['CODEQ_SERVER_ENTRY'];
  if (given) {
    const p = resolve(given);
    if (!existsSync(p)) throw new Error(`codeQ server entry ${p} does not exist (serverEntry option / CODEQ_SERVER_ENTRY)`);
    return p;
  }
  try {
    const pkgJson = createRequire(import.meta.url).resolve('@codeq/server/package.json');
    const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { main?: string };
    const p = resolve(dirname(pkgJson), pkg.main ?? 'dist/main.js');
    if (existsSync(p)) return p;
  } catch {
    /* not installed */
  }
  if (existsSync(SERVER_MAIN)) return SERVER_MAIN;
  throw new Error(
    'cannot find the codeQ server: install @codeq/server, or pass serverEntry / set CODEQ_SERVER_ENTRY to its dist/main.js ' +
      `(in the codeQ monorepo: build it with bash scripts/pnpm.sh exec turbo run build --filter=@codeq/server..., expected at ${SERVER_MAIN})`,
  );
}
/** The static token accepted for producers and workers (tenant `acme`, admin role, all worker scopes). */
export const TOKEN = 't';
export const WORKER_SCOPES = ['codeq:claim', 'codeq:heartbeat', 'codeq:abandon', 'codeq:nack', 'codeq:result', 'codeq:subscribe'];

/** A TCP port that was free a moment ago (the server cannot report its gRPC ports back to us). */
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
  /** HTTP base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  /** Worker stream address (`127.0.0.1:<port>`). */
  readonly workerAddress: string;
  /** Producer stream address (`127.0.0.1:<port>`). */
  readonly producerAddress: string;
  readonly dataDir: string;
  /** Everything the process printed (stdout + stderr). */
  output(): string;
  /** Stop the process (SIGTERM = graceful, SIGKILL = crash) and wait for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start the process again on the same ports and data directory (stops it first if running). */
  restart(signal?: NodeJS.Signals): Promise<void>;
  /** Stop and delete the data directory. */
  dispose(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** The three ports of a test server. */
export interface ServerPorts {
  http: number;
  worker: number;
  producer: number;
}

/** Static tokens and tenant of a test server. */
export interface ServerIdentity {
  /** Producer token with the ADMIN role. @default {@link TOKEN} */
  adminToken?: string;
  /** Worker token with every worker scope and every command. @default {@link TOKEN} */
  workerToken?: string;
  /** @default `acme` */
  tenantId?: string;
}

/** The environment of a test server: static tokens, SQLite in `dataDir`, fast backoff and shutdown. */
export function serverEnv(dataDir: string, ports: ServerPorts, extra: Record<string, string> = {}, id: ServerIdentity = {}): Record<string, string> {
  const tid = id.tenantId ?? 'acme';
  return {
    PATH: process.env['PATH'] ?? '',
    PERSISTENCE_PROVIDER: 'sqlite',
    PERSISTENCE_CONFIG: JSON.stringify({ path: dataDir }),
    PRODUCER_AUTH_PROVIDER: 'static',
    PRODUCER_AUTH_CONFIG: JSON.stringify({ token: id.adminToken ?? TOKEN, subject: 'p', raw: { role: 'ADMIN', tid } }),
    WORKER_AUTH_PROVIDER: 'static',
    WORKER_AUTH_CONFIG: JSON.stringify({ token: id.workerToken ?? TOKEN, subject: 'w', scopes: WORKER_SCOPES, eventTypes: ['*'], raw: { tid } }),
    HOST: '127.0.0.1',
    PORT: String(ports.http),
    WORKER_STREAM_ADDR: `127.0.0.1:${ports.worker}`,
    PRODUCER_STREAM_ADDR: `127.0.0.1:${ports.producer}`,
    LOG_LEVEL: 'warn',
    // Fast retries and restarts for tests.
    BACKOFF_POLICY: 'fixed',
    BACKOFF_BASE_SECONDS: '1',
    BACKOFF_MAX_SECONDS: '1',
    CODEQ_SHUTDOWN_GRACE_SECONDS: '2',
    ...extra,
  };
}

async function waitReady(url: string, child: ChildProcess, out: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
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

export interface StartOptions extends ServerIdentity {
  /** Extra or overriding environment variables of the server. */
  env?: Record<string, string>;
  /** HTTP port (default: a free one). */
  port?: number;
  dataDir?: string;
  /** The server's `main.js` (see {@link resolveServerEntry}). */
  serverEntry?: string;
  /** How long start-up may take. @default 20000 */
  startTimeoutMs?: number;
}

/** Starts a server with HTTP and both gRPC streams; `env` overrides the defaults of {@link serverEnv}. */
export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const entry = resolveServerEntry(opts.serverEntry);
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'codeq-testkit-')));
  const ports: ServerPorts = { http: opts.port ?? (await freePort()), worker: await freePort(), producer: await freePort() };
  const url = `http://127.0.0.1:${ports.http}`;
  let log = '';
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const c = spawn(process.execPath, [entry], { env: serverEnv(dataDir, ports, opts.env, opts), stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    running.add(c);
    c.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    exited = new Promise<void>((r) => c.once('exit', () => (running.delete(c), r())));
    await waitReady(url, c, () => log, opts.startTimeoutMs ?? 20_000);
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
    port: ports.http,
    workerAddress: `127.0.0.1:${ports.worker}`,
    producerAddress: `127.0.0.1:${ports.producer}`,
    dataDir,
    output: () => log,
    stop,
    restart: async (signal?: NodeJS.Signals) => {
      await stop(signal);
      await launch();
    },
    dispose: async () => {
      await stop('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Minimal raw HTTP call for assertions that must not go through the SDK under test. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test helper: bodies are asserted field by field
export async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(base + '/v1/codeq' + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

/** Polls `cond` every 25 ms until it holds; throws after `ms`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
