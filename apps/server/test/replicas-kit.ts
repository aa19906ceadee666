/**
 * Shared set-up of the multi-replica tests: the environment of a replica on a PostgreSQL database
 * with static producer (ADMIN) and worker tokens, and a group of real server processes on a fresh
 * database, started before the file's tests and killed (the database dropped) after them.
 */
import { ALL_SCOPES } from './harness.js';
import { spawnServer, type ServerProcess } from './process.js';
import { dropDatabase, ensureDatabase } from './pg.js';

export function replicaEnv(dbUrl: string, o: { tenant: string; producerToken: string; workerToken: string }): Record<string, string> {
  return {
    LOG_LEVEL: 'warn',
    PERSISTENCE_PROVIDER: 'postgres',
    PERSISTENCE_CONFIG: JSON.stringify({ url: dbUrl, poolSize: 4 }),
    PRODUCER_AUTH_PROVIDER: 'static',
    PRODUCER_AUTH_CONFIG: JSON.stringify({ token: o.producerToken, subject: 'producer', raw: { tid: o.tenant, role: 'ADMIN' } }),
    WORKER_AUTH_PROVIDER: 'static',
    WORKER_AUTH_CONFIG: JSON.stringify({ token: o.workerToken, subject: 'worker', scopes: ALL_SCOPES, eventTypes: ['*'], raw: { tid: o.tenant } }),
  };
}

/** Registers beforeAll/afterAll for `n` replicas on database `db`; read them once the tests run. */
export function replicaGroup(db: string, n: number, env: (dbUrl: string) => Record<string, string>): { replicas: ServerProcess[]; url: () => string } {
  const replicas: ServerProcess[] = [];
  let url = '';
  beforeAll(async () => {
    url = await ensureDatabase(db);
    for (let i = 0; i < n; i++) replicas.push(await spawnServer(env(url)));
  }, 60_000);
  afterAll(async () => {
    for (const r of replicas) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    replicas.length = 0;
    await dropDatabase(db);
  }, 30_000);
  return { replicas, url: () => url };
}
