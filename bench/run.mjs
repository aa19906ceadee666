#!/usr/bin/env node
// codeQ benchmark orchestrator (not part of the test suite).
//
//   node bench/run.mjs [--mode http|grpc] [--scenario full|latency|all] [--n 20000]
//                      [--rate 1000] [--seconds 10] [--fsync false] [--concurrency 64]
//                      [--inflight 64] [--cpu-prof] [--batch N (grpc: CreateTaskBatch, Ready.count, ResultBatch)]
//                      [--engine sqlite|postgres --pg-url postgres://… [--replicas N] [--pool-size 10]]
//
// Starts the built server (node apps/server/dist/main.js) on free loopback ports with a fresh
// temp data directory, forks a producer and a worker process (bench/lib/role.mjs) and measures:
//   full    : worker ready, producer creates N tasks (64 in flight); cycles/s = N / (last completion − first create)
//   latency : producer creates at a fixed rate; per task latency = completion − t0 (p50/p90/p99/max)
// plus the server's peak RSS (VmHWM) and CPU seconds. Everything shares the machine's cores.
//
// --engine postgres: a fresh database (codeq_bench_<pid>_<time>) is created on the PostgreSQL
// server of --pg-url and dropped at the end; --replicas N starts N server processes on it. The
// work is split into N lanes: lane i's producer creates on replica i and its worker claims and
// completes on replica i+1 (mod N), so every task crosses replicas when N > 1.
import { fork, spawn, execSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, r1 } from './lib/common.mjs';

const root = fileURLToPath(new URL('../', import.meta.url));
const args = process.argv.slice(2);
const arg = (name, def) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = args[i + 1];
  return v === undefined || v.startsWith('--') ? true : v;
};
const opts = {
  mode: String(arg('mode', 'http')),
  scenario: String(arg('scenario', 'all')),
  n: Number(arg('n', 20000)),
  rate: Number(arg('rate', 1000)),
  seconds: Number(arg('seconds', 10)),
  fsync: String(arg('fsync', 'false')) === 'true',
  concurrency: Number(arg('concurrency', 64)),
  inflight: Number(arg('inflight', 64)),
  cpuProf: arg('cpu-prof', false) === true,
  url: arg('url', null),
  token: String(arg('token', 'bench-token')),
  timeoutS: Number(arg('timeout', 300)),
  batch: Number(arg('batch', 1)),
  engine: String(arg('engine', 'sqlite')),
  pgUrl: arg('pg-url', null),
  replicas: Number(arg('replicas', 1)),
  poolSize: Number(arg('pool-size', 10)),
};
if (opts.engine !== 'sqlite' && opts.engine !== 'postgres') throw new Error('--engine must be sqlite or postgres');
if (opts.engine === 'postgres' && typeof opts.pgUrl !== 'string') throw new Error('--engine postgres needs --pg-url postgres://user@host:port/db (e.g. from scripts/pg-throwaway.sh)');
if (opts.engine === 'sqlite' && opts.replicas !== 1) throw new Error('--replicas > 1 needs --engine postgres (the embedded engine is one process)');
if (!(opts.replicas >= 1)) throw new Error('--replicas must be >= 1');

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });

const scopes = ['codeq:claim', 'codeq:heartbeat', 'codeq:abandon', 'codeq:nack', 'codeq:result', 'codeq:subscribe'];

/** pg's Client from apps/server's dependencies (the PostgreSQL engine's driver). */
async function pgClient(url) {
  const { createRequire } = await import('node:module');
  const req = createRequire(join(root, 'apps/server/package.json'));
  const pg = req('pg');
  const c = new (pg.Client ?? pg.default.Client)({ connectionString: url });
  await c.connect();
  return c;
}

/** A fresh database on the --pg-url server; returns its URL and a drop(). */
async function createBenchDatabase() {
  const name = `codeq_bench_${process.pid}_${Date.now()}`;
  const admin = await pgClient(opts.pgUrl);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(opts.pgUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = await pgClient(opts.pgUrl);
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

async function startServer(pgDbUrl) {
  const dir = mkdtempSync(join(tmpdir(), 'codeq-bench-'));
  const [port, wport, pport] = [await freePort(), await freePort(), await freePort()];
  const env = {
    PATH: process.env.PATH,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    PERSISTENCE_PROVIDER: pgDbUrl ? 'postgres' : 'sqlite',
    PERSISTENCE_CONFIG: JSON.stringify(pgDbUrl ? { url: pgDbUrl, poolSize: opts.poolSize } : { path: join(dir, 'data'), fsyncOnCommit: opts.fsync }),
    PRODUCER_AUTH_PROVIDER: 'static',
    PRODUCER_AUTH_CONFIG: JSON.stringify({ token: opts.token, subject: 'bench-producer', raw: { role: 'ADMIN', tid: 'bench' } }),
    WORKER_AUTH_PROVIDER: 'static',
    WORKER_AUTH_CONFIG: JSON.stringify({ token: opts.token, subject: 'bench-worker', scopes, eventTypes: ['*'], raw: { tid: 'bench' } }),
    WORKER_STREAM_ADDR: `127.0.0.1:${wport}`,
    PRODUCER_STREAM_ADDR: `127.0.0.1:${pport}`,
  };
  const profDir = join(dir, 'prof');
  const nodeArgs = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'apps/server/dist/main.js')], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      /* not yet */
    }
    if (i > 300 || child.exitCode !== null) throw new Error('server did not start (did you build it? pnpm build)');
    await sleep(50);
  }
  let peakRss = 0;
  const sampler = setInterval(() => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakRss = Math.max(peakRss, Number(m[1]) / 1024);
    } catch {
      /* gone */
    }
  }, 200);
  return {
    url,
    workerAddr: `127.0.0.1:${wport}`,
    producerAddr: `127.0.0.1:${pport}`,
    pid: child.pid,
    cpuS() {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    },
    hwmMB() {
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    peakRssMB: () => peakRss,
    async stop() {
      clearInterval(sampler);
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      let profile;
      if (opts.cpuProf) {
        const f = readdirSync(profDir).filter((x) => x.endsWith('.cpuprofile')).sort()[0];
        if (f) {
          profile = join(tmpdir(), `codeq-server-${Date.now()}.cpuprofile`);
          execSync(`cp ${join(profDir, f)} ${profile}`);
        }
      }
      rmSync(dir, { recursive: true, force: true });
      return profile;
    },
  };
}

function role(init) {
  const child = fork(join(root, 'bench/lib/role.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const msgs = [];
  let waiter = null;
  child.on('message', (m) => {
    if (m.type === 'error') console.error(`[${init.role}] ${m.message}`);
    msgs.push(m);
    waiter?.();
  });
  child.send({ type: 'init', ...init });
  return {
    child,
    async wait(type, ms) {
      const end = Date.now() + ms;
      for (;;) {
        const i = msgs.findIndex((m) => m.type === type || m.type === 'error');
        if (i >= 0) {
          const m = msgs.splice(i, 1)[0];
          if (m.type === 'error') throw new Error(`${init.role}: ${m.message}`);
          return m;
        }
        if (Date.now() > end) throw new Error(`${init.role}: no '${type}' within ${ms} ms`);
        await new Promise((r) => {
          waiter = r;
          setTimeout(r, 200);
        });
      }
    },
    send: (m) => child.send(m),
    kill: () => child.kill('SIGKILL'),
  };
}

async function scenario(servers, kind) {
  const stamp = `${process.pid}_${Date.now()}`;
  const lanes = servers.length;
  const total = kind === 'full' ? opts.n : Math.round(opts.rate * opts.seconds);
  const deadline = Date.now() + opts.timeoutS * 1000;
  const roles = [];
  const cpu0 = servers.map((s) => s.cpuS());
  try {
    const laneRuns = servers.map((srv, i) => {
      const wsrv = servers[(i + 1) % lanes];
      const command = `bench_${kind}_${stamp}_${i}`;
      const base = { token: opts.token, command, leaseSeconds: 30, waitSeconds: 5, client: 'auto', batch: opts.batch };
      const pcfg = { ...base, url: srv.url, workerAddr: srv.workerAddr, producerAddr: srv.producerAddr };
      const wcfg = { ...base, url: wsrv.url, workerAddr: wsrv.workerAddr, producerAddr: wsrv.producerAddr };
      const expected = Math.floor(total / lanes) + (i < total % lanes ? 1 : 0);
      const worker = role({ role: 'worker', transport: opts.mode, cfg: wcfg, concurrency: opts.concurrency, expected, recordLatency: true, startImmediately: true });
      const producer = role({ role: 'producer', transport: opts.mode, cfg: pcfg, inflight: opts.inflight });
      roles.push(worker, producer);
      return { worker, producer, expected };
    });
    for (const l of laneRuns) {
      await l.worker.wait('ready', 30_000);
      await l.producer.wait('ready', 30_000);
    }
    const results = await Promise.all(
      laneRuns.map(async (l) => {
        l.producer.send(kind === 'full' ? { type: 'go', mode: 'burst', n: l.expected, inflight: opts.inflight, deadline } : { type: 'go', mode: 'rate', rate: opts.rate / lanes, seconds: opts.seconds, maxInflight: 2000, deadline });
        const p = await l.producer.wait('done', opts.timeoutS * 1000);
        let w;
        try {
          w = await l.worker.wait('done', Math.max(1000, deadline - Date.now()));
        } catch {
          l.worker.send({ type: 'report' });
          w = await l.worker.wait('done', 10_000);
        }
        return { p, w, expected: l.expected };
      }),
    );
    const cpu = servers.reduce((a, s, i) => a + s.cpuS() - cpu0[i], 0);
    const sum = (f) => results.reduce((a, r) => a + (f(r) ?? 0), 0);
    const uniq = sum((r) => r.w.uniq);
    const tFirst = Math.min(...results.map((r) => r.p.tFirst));
    const tLast = Math.max(...results.map((r) => r.w.tLast));
    const tLastCreate = Math.max(...results.map((r) => r.p.tLast));
    // Latency percentiles: the lanes' own percentiles, worst lane (exact for one lane).
    const worst = (k) => Math.max(...results.map((r) => r.w.latency?.[k] ?? 0));
    const out = {
      scenario: kind,
      mode: opts.mode,
      engine: opts.engine,
      replicas: lanes,
      n: total,
      completed: uniq,
      duplicates: sum((r) => r.w.dup),
      errors: sum((r) => (r.w.errors ?? 0) + (r.p.errors ?? 0)),
      valid: results.every((r) => r.w.uniq === r.expected && !r.w.partial),
      cyclesPerSec: r1(uniq / ((tLast - tFirst) / 1000)),
      createsPerSec: r1(sum((r) => r.p.acked) / ((tLastCreate - tFirst) / 1000)),
      achievedRate: results[0].p.achievedRate ? r1(sum((r) => r.p.achievedRate)) : undefined,
      latencyMs: results[0].w.latency ? { p50: r1(worst('p50')), p90: r1(worst('p90')), p99: r1(worst('p99')), max: r1(worst('max')) } : undefined,
      serverCpuS: r1(cpu),
      serverCpuUsPerCycle: r1((cpu * 1e6) / Math.max(1, uniq)),
      producerCpuS: r1(sum((r) => r.p.cpuUserS + r.p.cpuSysS)),
      workerCpuS: r1(sum((r) => r.w.cpuUserS + r.w.cpuSysS)),
      firstError: results.map((r) => r.w.firstErr ?? r.p.firstErr).find(Boolean),
    };
    for (const r of roles) r.send({ type: 'close' });
    await sleep(300);
    return out;
  } finally {
    for (const r of roles) r.kill();
  }
}

async function main() {
  if (opts.url) throw new Error('--url: an external server is not supported by this orchestrator yet; omit it to start one');
  const db = opts.engine === 'postgres' ? await createBenchDatabase() : null;
  const servers = [];
  const results = [];
  const label = `${opts.mode}${db ? ` postgres×${opts.replicas}` : ''}`;
  try {
    for (let i = 0; i < opts.replicas; i++) servers.push(await startServer(db?.url));
    const transport = await import(join(root, `bench/transports/${opts.mode}.mjs`));
    for (const server of servers) await transport.preflight({ url: server.url, token: opts.token, client: 'auto', workerAddr: server.workerAddr, producerAddr: server.producerAddr });
    const kinds = opts.scenario === 'all' ? ['full', 'latency'] : [opts.scenario];
    for (const k of kinds) {
      const r = await scenario(servers, k);
      results.push(r);
      if (k === 'full') console.log(`full     ${label}: ${r.cyclesPerSec} cycles/s (${r.completed}/${r.n} completed, ${r.duplicates} duplicates, server ${r.serverCpuUsPerCycle} µs CPU/cycle)${r.valid ? '' : '  INVALID'}`);
      else console.log(`latency  ${label}: ${opts.rate}/s for ${opts.seconds}s (sent ${r.achievedRate}/s): p50 ${r.latencyMs.p50} ms, p90 ${r.latencyMs.p90} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms${r.valid ? '' : '  INVALID'}`);
    }
  } finally {
    const hwm = Math.max(0, ...servers.map((s) => Math.max(s.hwmMB(), s.peakRssMB())));
    let profile;
    for (const s of servers) profile = (await s.stop()) ?? profile;
    await db?.drop().catch((e) => console.error(`dropping the bench database failed: ${e.message}`));
    const cpu = cpus()[0]?.model ?? '?';
    let commit = '?';
    try {
      commit = execSync('git rev-parse --short HEAD', { cwd: root }).toString().trim();
    } catch {
      /* not a checkout */
    }
    const durability = db ? 'postgres synchronous_commit=on (server default)' : `fsyncOnCommit=${opts.fsync}`;
    console.log(`server peak RSS (largest replica): ${r1(hwm)} MB; ${durability}; node ${process.version}; ${cpus().length} × ${cpu}; commit ${commit}`);
    if (profile) console.log(`cpu profile: ${profile} (summarise: node bench/profile-summary.mjs ${profile})`);
    console.log(JSON.stringify({ results, serverPeakRssMB: r1(hwm), engine: opts.engine, replicas: opts.replicas, fsyncOnCommit: db ? null : opts.fsync, node: process.version, cpus: cpus().length, cpu, commit }));
  }
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
