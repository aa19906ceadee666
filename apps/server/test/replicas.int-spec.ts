/**
 * Several stateless replicas on one PostgreSQL database (issue 7): three real server processes
 * (`node dist/main.js`) share a fresh database on the server of CODEQ_TEST_PG_URL.
 *
 * Needs PostgreSQL: `scripts/test.sh` starts a throwaway one (scripts/pg-throwaway.sh) and sets
 * CODEQ_TEST_PG_URL for the PostgreSQL pass. Without it this file is skipped, and says so.
 */
import { createRequire } from 'node:module';
import { call } from './harness.js';
import { replicaEnv } from './replicas-kit.js';
import { spawnServer, type ServerProcess } from './process.js';

const PG_URL = process.env['CODEQ_TEST_PG_URL'];
const maybe = PG_URL ? describe : describe.skip;
if (!PG_URL) process.stderr.write('replicas.int-spec: skipped, CODEQ_TEST_PG_URL is not set (scripts/test.sh sets it for the PostgreSQL pass)\n');

interface PgClient {
  connect(): Promise<void>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
}

async function admin(): Promise<PgClient> {
  const pg = createRequire(import.meta.url)('pg') as { Client: new (o: { connectionString: string }) => PgClient };
  const c = new pg.Client({ connectionString: PG_URL! });
  await c.connect();
  return c;
}

const P = 'rp-producer';
const W = 'rp-worker';

const env = (dbUrl: string) => replicaEnv(dbUrl, { tenant: 'replicas', producerToken: P, workerToken: W });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function create(url: string, command: string, payload: unknown = {}): Promise<string> {
  const r = await call<{ id: string }>(url, 'POST', '/v1/codeq/tasks', { token: P, body: { command, payload } });
  if (r.status !== 202) throw new Error(`create answered ${r.status}: ${r.text}`);
  return r.body.id;
}

async function claim(url: string, command: string, opts: { waitSeconds?: number; leaseSeconds?: number } = {}): Promise<{ id: string; leaseId: string } | null> {
  const r = await call<{ id: string; leaseId: string }>(url, 'POST', '/v1/codeq/tasks/claim', {
    token: W,
    body: { commands: [command], waitSeconds: opts.waitSeconds ?? 0, leaseSeconds: opts.leaseSeconds ?? 30 },
  });
  if (r.status === 204) return null;
  if (r.status !== 200) throw new Error(`claim answered ${r.status}: ${r.text}`);
  return r.body;
}

maybe('three replicas on one PostgreSQL database', () => {
  const db = `codeq_replicas_${process.pid}_${Date.now()}`;
  let dbUrl = '';
  let replicas: ServerProcess[] = [];

  beforeAll(async () => {
    const c = await admin();
    await c.query(`CREATE DATABASE ${db}`);
    await c.end();
    const u = new URL(PG_URL!);
    u.pathname = `/${db}`;
    dbUrl = u.toString();
    // Started one after the other: the first one takes the maintenance lock.
    for (let i = 0; i < 3; i++) replicas.push(await spawnServer(env(dbUrl)));
  }, 60_000);

  afterAll(async () => {
    for (const r of replicas) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    replicas = [];
    const c = await admin();
    await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await c.end();
  }, 30_000);

  it('claims a task through another replica than the one that created it', async () => {
    const [a, b] = replicas;
    const id = await create(a!.url, 'cross', { n: 1 });
    const got = await claim(b!.url, 'cross');
    expect(got?.id).toBe(id);
    const r = await call(b!.url, 'POST', `/v1/codeq/tasks/${id}/result`, { token: W, body: { status: 'COMPLETED', result: { ok: true }, leaseId: got!.leaseId } });
    expect(r.status).toBe(200);
    const seen = await call<{ status: string }>(a!.url, 'GET', `/v1/codeq/tasks/${id}`, { token: P });
    expect(seen.body.status).toBe('COMPLETED');
    const res = await call(replicas[2]!.url, 'GET', `/v1/codeq/tasks/${id}/result`, { token: P });
    expect(res.status).toBe(200);
  });

  it('wakes a long-poll claim on a third replica within 100 ms of a create (LISTEN/NOTIFY)', async () => {
    const [a, , c] = replicas;
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const command = `wake-${i}`;
      const waiting = claim(c!.url, command, { waitSeconds: 20 }).then((t) => ({ t, at: performance.now() }));
      await sleep(300); // parked
      const before = performance.now();
      const id = await create(a!.url, command);
      const { t, at } = await waiting;
      expect(t?.id).toBe(id);
      delays.push(at - before);
    }
    delays.sort((x, y) => x - y);
    process.stderr.write(`replicas: create on A → long-poll on C answered after ${delays.map((d) => d.toFixed(1)).join(', ')} ms\n`);
    // The fallback poll is ~1.5 s: a median under 100 ms can only come from the notification.
    expect(delays[2]).toBeLessThan(100);
  });

  it('delivers no task twice while its lease is valid, under concurrent claims on every replica', async () => {
    const command = 'race';
    const ids = new Set<string>();
    for (let i = 0; i < 300; i += 50) {
      const r = await call<{ id: string }[]>(replicas[i % 3]!.url, 'POST', '/v1/codeq/tasks/batch', {
        token: P,
        body: { tasks: Array.from({ length: 50 }, (_, k) => ({ command, payload: { i: i + k } })) },
      });
      expect([200, 201, 202]).toContain(r.status);
    }
    const claimed: string[] = [];
    const lane = async (url: string) => {
      for (;;) {
        const t = await claim(url, command, { leaseSeconds: 60 });
        if (!t) return;
        claimed.push(t.id);
        ids.add(t.id);
      }
    };
    await Promise.all(replicas.flatMap((r) => Array.from({ length: 8 }, () => lane(r.url))));
    expect(claimed.length).toBe(300);
    expect(ids.size).toBe(300);
  });

  it('loses no acknowledged write when a replica is SIGKILLed; the survivors take over its leases and the reaper', async () => {
    const [a, b, c] = replicas;
    // Acknowledged creates through A, and leases taken through A.
    const created: string[] = [];
    for (let i = 0; i < 20; i++) created.push(await create(a!.url, 'kill', { i }));
    const leased: string[] = [];
    for (let i = 0; i < 5; i++) {
      const t = await claim(a!.url, 'kill', { leaseSeconds: 2 });
      leased.push(t!.id);
    }
    // A started first, so it holds the maintenance lock: kill it.
    a!.child.kill('SIGKILL');
    await a!.exited;

    for (const id of created) {
      const r = await call<{ id: string }>(b!.url, 'GET', `/v1/codeq/tasks/${id}`, { token: P });
      expect(r.status).toBe(200);
    }
    // Every task comes out exactly once per delivery through the survivors; the five leased through
    // A come back once their leases expire (the reaper now runs on B or C).
    const seen = new Map<string, number>();
    const deadline = Date.now() + 30_000;
    while ([...created].some((id) => !seen.has(id)) && Date.now() < deadline) {
      const t = await claim(seen.size % 2 ? b!.url : c!.url, 'kill', { waitSeconds: 2, leaseSeconds: 60 });
      if (t) seen.set(t.id, (seen.get(t.id) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual([...created].sort());
    for (const id of leased) {
      const r = await call<{ attempts: number }>(c!.url, 'GET', `/v1/codeq/tasks/${id}`, { token: P });
      expect(r.body.attempts).toBe(2); // delivered through A, expired, redelivered through B or C
    }
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
  }, 60_000);
});
