/**
 * `startCodeq()`: a throwaway codeQ server for your own tests — the real server (embedded SQLite
 * engine) as a child process on free ports, with a temp data directory deleted by `stop()`, and
 * fresh random tokens for an admin producer and a worker.
 */
import { randomBytes } from 'node:crypto';
import { startServer } from './server.js';

/** Options of {@link startCodeq}. */
export interface StartCodeqOptions {
  /**
   * The server's `main.js`. @default the `CODEQ_SERVER_ENTRY` environment variable, else the
   * installed `@codeq/server` package, else the server build of the codeQ monorepo.
   */
  serverEntry?: string;
  /** Tenant of both tokens. @default `acme` */
  tenantId?: string;
  /** Extra server environment variables (e.g. `{ MAX_ATTEMPTS_DEFAULT: '3' }`); see the server's configuration docs. */
  env?: Record<string, string>;
  /** How long start-up may take. @default 20000 */
  startTimeoutMs?: number;
}

/** A running throwaway server. */
export interface Codeq {
  /** HTTP base URL, e.g. `http://127.0.0.1:41234` (`createProducer({ baseUrl })`, `createWorker({ baseUrl })`). */
  readonly url: string;
  /** Producer stream address `127.0.0.1:<port>` (`createProducer({ grpcAddress })`). */
  readonly grpcProducer: string;
  /** Worker stream address `127.0.0.1:<port>` (`createWorker({ grpcAddress })`). */
  readonly grpcWorker: string;
  /** Producer token with the ADMIN role (submit, read, cancel, admin calls). */
  readonly adminToken: string;
  /** Worker token: every worker scope, every command. */
  readonly workerToken: string;
  readonly tenantId: string;
  /** The temp SQLite data directory (deleted by `stop()`). */
  readonly dataDir: string;
  /** What the server printed so far (for failing tests). */
  output(): string;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and deletes the data directory. Idempotent. */
  stop(): Promise<void>;
}

const token = (): string => randomBytes(18).toString('base64url');

/**
 * Starts a throwaway codeQ server.
 *
 * ```ts
 * const codeq = await startCodeq();
 * const producer = createProducer({ baseUrl: codeq.url, token: codeq.adminToken });
 * const worker = createWorker({ grpcAddress: codeq.grpcWorker, token: codeq.workerToken, commands: ['email.send'], handler }).start();
 * // …
 * await worker.stop(); await producer.close(); await codeq.stop();
 * ```
 */
export async function startCodeq(opts: StartCodeqOptions = {}): Promise<Codeq> {
  const adminToken = token();
  const workerToken = token();
  const tenantId = opts.tenantId ?? 'acme';
  const s = await startServer({
    adminToken,
    workerToken,
    tenantId,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.serverEntry ? { serverEntry: opts.serverEntry } : {}),
    ...(opts.startTimeoutMs ? { startTimeoutMs: opts.startTimeoutMs } : {}),
  });
  let stopping: Promise<void> | undefined;
  return {
    url: s.url,
    grpcProducer: s.producerAddress,
    grpcWorker: s.workerAddress,
    adminToken,
    workerToken,
    tenantId,
    dataDir: s.dataDir,
    output: () => s.output(),
    stop: () =>
      (stopping ??= (async () => {
        await s.stop('SIGTERM');
        await s.dispose();
      })()),
  };
}
