#!/usr/bin/env node
// The benchmark of record (not part of the test suite): runs the peer harness
// (/work/shared/bench/peers, or PEERS_SRC) against BullMQ and against a codeQ server this script
// starts itself, once per fsyncOnCommit setting, and prints codeQ's figures as ratios to BullMQ
// measured in the same pass.
//
//   node bench/peers.mjs                       # full: REPS=3 N=20000, fsync false and true (~20-30 min on 2 cores)
//   REPS=1 N=5000 node bench/peers.mjs         # quick look
//   FSYNC="false" PEERS="bullmq codeq-sdk" node bench/peers.mjs
//
// Steps: copy the harness to a temp dir and `npm ci` there (PEERS_COPY=<dir> reuses a prepared
// copy); per fsync setting start `node apps/server/dist/main.js` (temp data dir, SQLite,
// static dev tokens, HTTP + both gRPC streams on free loopback ports), run the harness's run.sh
// with PEERS (default "bullmq codeq codeq-sdk"; `codeq` = HTTP one request per step, `codeq-sdk`
// = producer.submit() / createWorker() over the gRPC streams), sample the server's RSS, stop it.
// The harness starts and stops its own Redis (AOF everysec). Knobs passed through to the harness:
// REPS (3), N (20000), SCENARIOS ("full latency"), LAT_RATES ("1000"), SECONDS_LAT, CONCURRENCY,
// PRODUCER_INFLIGHT, CODEQ_WAIT_SECONDS. Others: FSYNC ("false true"), SDK_TRANSPORT (grpc|http),
// SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server).
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const env = process.env;
const SRC = env.PEERS_SRC || [join(root, '../shared/bench/peers'), join(root, '../../shared/bench/peers'), '/work/shared/bench/peers'].find((d) => existsSync(join(d, 'bench.mjs'))) || join(root, '../shared/bench/peers');
const FSYNC = (env.FSYNC || 'false true').split(/\s+/).filter(Boolean);
const PEERS = env.PEERS || 'bullmq codeq codeq-sdk';
const SDK_TRANSPORT = env.SDK_TRANSPORT || 'grpc';
const TOKEN = 'bench-token';
const scopes = ['codeq:claim', 'codeq:heartbeat', 'codeq:abandon', 'codeq:nack', 'codeq:result', 'codeq:subscribe'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const fmt = (x, d) => (!Number.isFinite(x) ? '—' : d !== undefined ? x.toFixed(d) : x >= 100 ? String(Math.round(x)) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

// CPU time of a process in seconds, from /proc (Linux; clock ticks of 10 ms), or null.
function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/** The pid of the harness's redis-server (it starts its own per run.sh), or null. */
function findRedis() {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'redis-server') return Number(p);
    } catch {
      /* gone */
    }
  }
  return null;
}

/**
 * Samples the CPU seconds of the codeQ server and of the harness's Redis every 100 ms, so each
 * full run's server-side CPU can be charged to it: a run owns the interval from its start to the
 * next run's start (both servers are idle between runs).
 */
function cpuRecorder(serverPid) {
  const samples = [];
  let redis = null;
  const tick = () => {
    const t = Date.now();
    if (redis === null || cpuSeconds(redis) === null) redis = findRedis();
    samples.push({ t, server: cpuSeconds(serverPid), redis: redis === null ? null : cpuSeconds(redis) });
  };
  tick();
  const timer = setInterval(tick, 100);
  const at = (t, key) => {
    // the last sample at or before t; if the process was not up yet, its first sample
    let best = null;
    for (const s of samples) {
      if (s[key] === null) continue;
      if (s.t > t && best !== null) break;
      best = s[key];
      if (s.t > t) break;
    }
    return best;
  };
  return {
    stop: () => (tick(), clearInterval(timer)),
    /** CPU seconds `key` ('server' | 'redis') used between t0 and t1, or NaN. */
    used(key, t0, t1) {
      const a = at(t0, key);
      const b = at(t1, key);
      return a === null || b === null || b < a ? NaN : b - a;
    },
  };
}

function prepareCopy() {
  if (env.PEERS_COPY) {
    if (!existsSync(join(env.PEERS_COPY, 'node_modules'))) throw new Error(`PEERS_COPY=${env.PEERS_COPY} has no node_modules`);
    return { dir: env.PEERS_COPY, owned: false };
  }
  if (!existsSync(join(SRC, 'bench.mjs'))) throw new Error(`peer harness not found at ${SRC} (set PEERS_SRC)`);
  const dir = join(mkdtempSync(join(tmpdir(), 'codeq-peers-')), 'peers');
  cpSync(SRC, dir, { recursive: true, filter: (p) => !/\/(node_modules|results)(\/|$)/.test(p.slice(SRC.length)) });
  console.log(`[peers] harness copied to ${dir}; npm ci …`);
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'inherit' });
  return { dir, owned: true };
}

async function startServer(fsync) {
  const main = join(root, 'apps/server/dist/main.js');
  if (!existsSync(main)) throw new Error('apps/server/dist/main.js missing: build first (bash scripts/pnpm.sh exec turbo run build)');
  const dir = mkdtempSync(join(tmpdir(), 'codeq-peers-server-'));
  const [port, wport, pport] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(process.execPath, [...(env.SERVER_NODE_ARGS || '').split(/\s+/).filter(Boolean), main], {
    env: {
      PATH: env.PATH,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      PERSISTENCE_PROVIDER: 'sqlite',
      PERSISTENCE_CONFIG: JSON.stringify({ path: join(dir, 'data'), fsyncOnCommit: fsync }),
      PRODUCER_AUTH_PROVIDER: 'static',
      PRODUCER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'bench-producer', raw: { role: 'ADMIN', tid: 'bench' } }),
      WORKER_AUTH_PROVIDER: 'static',
      WORKER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'bench-worker', scopes, eventTypes: ['*'], raw: { tid: 'bench' } }),
      WORKER_STREAM_ADDR: `127.0.0.1:${wport}`,
      PRODUCER_STREAM_ADDR: `127.0.0.1:${pport}`,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      /* not yet */
    }
    if (i > 300 || child.exitCode !== null) throw new Error('codeQ server did not start');
    await sleep(50);
  }
  let peakRss = 0;
  const sample = () => {
    try {
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakRss = Math.max(peakRss, Number(m[1]) / 1024);
    } catch {
      /* gone */
    }
  };
  const sampler = setInterval(sample, 1000);
  return {
    url,
    workerAddr: `127.0.0.1:${wport}`,
    producerAddr: `127.0.0.1:${pport}`,
    pid: child.pid,
    peakRssMB: () => (sample(), peakRss),
    async stop() {
      clearInterval(sampler);
      sample();
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs the harness's run.sh once; returns the raw jsonl it wrote. */
async function runHarness(dir, server, fsync) {
  const rawDir = join(dir, 'results/raw');
  const before = new Set(existsSync(rawDir) ? readdirSync(rawDir) : []);
  const childEnv = {
    ...env,
    PEERS,
    REPS: env.REPS || '3',
    N: env.N || '20000',
    SCENARIOS: env.SCENARIOS || 'full latency',
    LAT_RATES: env.LAT_RATES || '1000',
    CODEQ_URL: server.url,
    CODEQ_TOKEN: TOKEN,
    CODEQ_SDK_ROOT: root,
    CODEQ_DURABILITY: `embedded SQLite (WAL), group commit, fsyncOnCommit=${fsync}`,
    CODEQ_VERSION: `checkout ${gitRev()}`,
  };
  if (SDK_TRANSPORT === 'grpc') {
    childEnv.CODEQ_GRPC_PRODUCER = server.producerAddr;
    childEnv.CODEQ_GRPC_WORKER = server.workerAddr;
  } else {
    delete childEnv.CODEQ_GRPC_PRODUCER;
    delete childEnv.CODEQ_GRPC_WORKER;
  }
  const child = spawn('bash', ['run.sh'], { cwd: dir, env: childEnv, stdio: 'inherit' });
  const code = await new Promise((r) => child.once('exit', (c) => r(c ?? 1)));
  const fresh = readdirSync(rawDir).filter((f) => f.endsWith('.jsonl') && !before.has(f));
  const latest = fresh.sort((a, b) => statSync(join(rawDir, a)).mtimeMs - statSync(join(rawDir, b)).mtimeMs).pop();
  if (!latest) throw new Error(`the harness wrote no results (exit ${code})`);
  if (code !== 0) console.warn(`[peers] run.sh exited ${code} (some runs failed; see the table)`);
  return readFileSync(join(rawDir, latest), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

function gitRev() {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const LABEL = { bullmq: 'BullMQ 6.7 (Redis, AOF everysec)', codeq: 'codeQ over HTTP, one request per step', 'codeq-sdk': `codeQ SDKs (${SDK_TRANSPORT === 'grpc' ? 'gRPC streams' : 'HTTP'})` };

/**
 * CPU µs per full cycle of one full run: the harness's producer and worker processes (their own
 * report) and the server side (codeQ's server, or Redis for BullMQ) over the run's interval.
 */
function cpuPerCycle(r, next, cpu, passEnd) {
  const n = r.params?.n || 0;
  const m = r.metrics || {};
  const client = ((m.producerCpuS ?? NaN) + (m.workerCpuS ?? NaN)) * 1e6 / n;
  const t0 = Date.parse(r.started);
  const t1 = next ? Date.parse(next.started) : passEnd;
  const server = cpu ? (cpu.used(r.label === 'bullmq' ? 'redis' : 'server', t0, t1) * 1e6) / n : NaN;
  return { client, server };
}

function summarise(recs, cpu, passEnd) {
  const ok = (label, scen) => recs.filter((r) => r.label === label && r.scenario === scen && r.ok);
  const byStart = [...recs].sort((a, b) => Date.parse(a.started) - Date.parse(b.started));
  const cpuOf = new Map(byStart.map((r, i) => [r, cpuPerCycle(r, byStart[i + 1], cpu, passEnd)]));
  const rate = Math.max(...recs.filter((r) => r.scenario === 'latency').map((r) => r.params.rate), 0);
  const lat = (label, f) => median(ok(label, 'latency').filter((r) => r.params.rate === rate).map((r) => f(r.metrics)));
  const out = {};
  for (const label of new Set(recs.map((r) => r.label))) {
    out[label] = {
      full: median(ok(label, 'full').map((r) => r.metrics.tasksPerSec)),
      fullRuns: ok(label, 'full').map((r) => r.metrics.tasksPerSec),
      p50: lat(label, (m) => m.latencyMs.p50),
      p99: lat(label, (m) => m.latencyMs.p99),
      clientUs: median(ok(label, 'full').map((r) => cpuOf.get(r).client)),
      serverUs: median(ok(label, 'full').map((r) => cpuOf.get(r).server)),
      runs: `${recs.filter((r) => r.label === label && r.ok).length}/${recs.filter((r) => r.label === label).length}`,
    };
  }
  return { rate, rows: out };
}

async function main() {
  const started = new Date();
  const load0 = loadavg();
  const copy = prepareCopy();
  const passes = [];
  try {
    for (const f of FSYNC) {
      const fsync = f === 'true';
      console.log(`\n[peers] ==== pass fsyncOnCommit=${fsync}: PEERS="${PEERS}" REPS=${env.REPS || 3} N=${env.N || 20000} ====`);
      const server = await startServer(fsync);
      const cpu = cpuRecorder(server.pid);
      let recs;
      try {
        recs = await runHarness(copy.dir, server, fsync);
      } finally {
        cpu.stop();
        passes.push({ fsync, rssMB: server.peakRssMB(), ...(recs ? summarise(recs, cpu, Date.now()) : { rows: {}, rate: NaN }) });
        await server.stop();
      }
    }
  } finally {
    if (copy.owned && !env.KEEP_COPY) rmSync(join(copy.dir, '..'), { recursive: true, force: true });
    else console.log(`[peers] harness copy kept at ${copy.dir} (PEERS_COPY=${copy.dir} reuses it)`);
  }

  const lines = [];
  lines.push(
    `Peer harness (${SRC}), ${started.toISOString()}, ${cpus().length} × ${cpus()[0]?.model?.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}; load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}.`,
    `Workload: N=${env.N || 20000} tasks of ~200 B, 64 submits in flight, one worker process with 64 slots, one call per task; medians of ${env.REPS || 3}. Ratios are to BullMQ measured in the same pass.`,
    '',
    '| system | fsyncOnCommit | full cycles/s | × BullMQ | p50 / p99 ms @' + (passes[0]?.rate || 1000) + '/s | p99 − BullMQ p99 | server peak RSS MB | CPU µs per cycle: clients + server | CPU ceiling cycles/s | runs ok |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const p of passes) {
    const b = p.rows.bullmq;
    for (const [label, r] of Object.entries(p.rows)) {
      const isB = label === 'bullmq';
      lines.push(
        `| ${LABEL[label] ?? label} | ${isB ? '—' : p.fsync} | ${fmt(r.full)} | ${isB ? '1.00' : b ? fmt(r.full / b.full, 2) + '×' : '—'} | ${fmt(r.p50)} / ${fmt(r.p99)} | ${isB ? '—' : b ? (r.p99 - b.p99 >= 0 ? '+' : '') + fmt(r.p99 - b.p99) : '—'} | ${isB ? '—' : fmt(p.rssMB)} | ${fmt(r.clientUs, 0)} + ${fmt(r.serverUs, 0)} | ${fmt((cpus().length * 1e6) / (r.clientUs + r.serverUs), 0)} | ${r.runs} |`,
      );
    }
  }
  lines.push(
    '',
    `CPU per cycle: the harness's producer and worker processes + the server side (codeQ's server, or Redis for BullMQ), median of the full runs; the ceiling is what ${cpus().length} cores could carry at that cost if every process were busy all the time (client CPU includes each process's start-up, so short runs understate the ceiling).`,
  );
  console.log('\n' + lines.join('\n'));
}

main().catch((e) => {
  console.error(`[peers] ${e.stack || e}`);
  process.exit(1);
});
