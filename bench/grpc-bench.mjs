#!/usr/bin/env node
// codeQ gRPC stream benchmark: the full task cycle (create → claim → result) on the producer and
// worker streams, with the workload of bench/README.md (payload ~200 B, producer and worker in
// their own processes, everything on this machine). Not part of the test suite.
//
//   node bench/grpc-bench.mjs [--n 20000,50000] [--rate 5000 --seconds 5] [--batch 64] [--credits 64]
//                             [--inflight 64] [--reps 1] [--warmup 0] [--unbatched] [--http] [--cpu-prof] [--fsync false]
//                             [--json] [--out f.jsonl]
//
// It starts the built server (apps/server/dist/main.js; build it first with
// `bash scripts/pnpm.sh exec turbo run build --filter=@codeq/server...`) itself — temp data dir,
// SQLite with fsyncOnCommit off (--fsync), static tokens, WORKER_STREAM_ADDR / PRODUCER_STREAM_ADDR
// on free loopback ports — and drives each scenario with bench/http-bench.mjs in --url mode and
// --mode grpc (the same producer/worker processes, accounting and validity checks as the HTTP
// bench; transports/grpc.mjs is the client). Owning the server lets it report what the HTTP bench
// cannot: server CPU per task split by thread (main thread, the busiest other thread = the SQLite
// writer thread, all remaining threads = GC/V8 helpers and libuv), and VmHWM over all scenarios.
//
// Paths measured (one server each):
//   grpc batched   (default)     --batch B (64): the producer sends the creates of one event-loop
//                                turn as one CreateTaskBatch, the worker grants its free credits in
//                                Ready{count ≤ B} and sends the results of one turn as one
//                                ResultBatch (one Result entry per task)
//   grpc unbatched (--unbatched) one message per task (CreateTask, Ready{count:1}, Result), like
//                                upstream's Go SDKs by default
//   http           (--http)      bench/http-bench.mjs in HTTP mode (its own server), for the ratio
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, appendFileSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { summarizeProfile, formatSummary } from './profile-summary.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..');
const ENTRY = join(repoRoot, 'apps/server/dist/main.js');
const TOKEN = 'bench-token';

const USAGE = `usage: node bench/grpc-bench.mjs [options]
  --n LIST            full-cycle sizes, comma separated (20000,50000)
  --rate R --seconds S  fixed-rate latency scenario (5000, 5); --rate 0 skips it
  --batch B           max tasks per message on the batched path (64)
  --credits C         worker credits = tasks held or requested at once (64)
  --inflight P        producer creates in flight (64)
  --reps K            repeat each full-cycle size K times (1)
  --warmup W          an untimed full cycle of W tasks on each server before measuring (0)
  --unbatched         also measure one message per task
  --http              also run bench/http-bench.mjs in HTTP mode (full, first --n) for the ratio
  --cpu-prof          profile the server (batched path) and print where the time goes
  --fsync false|true  fsyncOnCommit (false)
  --timeout-s T       per scenario (300)
  --json              stdout carries only the final JSON line; --out FILE also appends it to FILE`;

let a;
try {
  ({ values: a } = parseArgs({
    options: {
      n: { type: 'string', default: '20000,50000' },
      rate: { type: 'string', default: '5000' },
      seconds: { type: 'string', default: '5' },
      batch: { type: 'string', default: '64' },
      credits: { type: 'string', default: '64' },
      inflight: { type: 'string', default: '64' },
      reps: { type: 'string', default: '1' },
      warmup: { type: 'string', default: '0' },
      unbatched: { type: 'boolean', default: false },
      http: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      fsync: { type: 'string', default: 'false' },
      'timeout-s': { type: 'string', default: '300' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (e) {
  console.error(`${e.message}\n${USAGE}`);
  process.exit(64);
}
if (a.help) {
  console.log(USAGE);
  process.exit(0);
}
const int = (name, v, min = 0) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < min) {
    console.error(`--${name} must be an integer ≥ ${min} (got ${v})`);
    process.exit(64);
  }
  return x;
};
const NS = a.n.split(',').map((x) => int('n', x.trim(), 1));
const RATE = int('rate', a.rate);
const SECONDS = int('seconds', a.seconds, 1);
const BATCH = int('batch', a.batch, 1);
const CREDITS = int('credits', a.credits, 1);
const INFLIGHT = int('inflight', a.inflight, 1);
const REPS = int('reps', a.reps, 1);
const WARMUP = int('warmup', a.warmup);
if (!['true', 'false'].includes(a.fsync)) {
  console.error('--fsync must be true or false');
  process.exit(64);
}
const out = (s = '') => (a.json ? process.stderr : process.stdout).write(s + '\n');
const info = (s) => process.stderr.write(`[grpc-bench] ${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const r1 = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);
const median = (v) => {
  const x = v.filter(Number.isFinite).sort((p, q) => p - q);
  if (!x.length) return null;
  const m = Math.floor(x.length / 2);
  return x.length % 2 ? x[m] : (x[m - 1] + x[m]) / 2;
};

// ------------------------------------------------------------------ processes we own
let server = null; // {proc, pid, dir, profDir, exited}
const kids = new Set();
function cleanup() {
  for (const k of kids) if (k.exitCode === null && k.signalCode === null) k.kill('SIGKILL');
  if (server?.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill('SIGKILL');
  if (server?.dir) rmSync(server.dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

// ------------------------------------------------------------------ /proc
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
/** CPU seconds of every thread of `pid`: Map tid → s. */
function threadCpu(pid) {
  const m = new Map();
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return m;
  }
  for (const tid of tids) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      m.set(Number(tid), (Number(f[11]) + Number(f[12])) / CLK_TCK);
    } catch {
      /* thread gone */
    }
  }
  return m;
}
/** Per-thread CPU between two snapshots: {main, writer (busiest other thread), rest}. */
function threadSplit(pid, before, after) {
  let main = 0;
  const others = [];
  for (const [tid, s] of after) {
    const d = s - (before.get(tid) ?? 0);
    if (tid === pid) main = d;
    else others.push(d);
  }
  others.sort((x, y) => y - x);
  const writer = others[0] ?? 0;
  const rest = others.slice(1).reduce((x, y) => x + y, 0);
  return { main, writer, rest };
}
function vmHWMMB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

// ------------------------------------------------------------------ server
function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}
function healthy(url) {
  return new Promise((res) => {
    const req = http.get(`${url}/healthz`, { agent: false, timeout: 1000 }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => res(false));
  });
}

async function startServer(cpuProf) {
  if (!existsSync(ENTRY)) throw new Error(`${ENTRY} is missing: build first (cd ${repoRoot} && bash scripts/pnpm.sh exec turbo run build --filter=@codeq/server...)`);
  const [port, wport, pport] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(os.tmpdir(), 'codeq-grpc-bench-'));
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(CODEQ_|PERSISTENCE_|PRODUCER_|WORKER_|IDENTITY_)/.test(k) || ['PORT', 'HOST', 'LOG_LEVEL', 'LOG_FORMAT', 'ENV'].includes(k)) delete env[k];
  Object.assign(env, {
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    PERSISTENCE_PROVIDER: 'sqlite',
    PERSISTENCE_CONFIG: JSON.stringify({ path: join(dir, 'data'), fsyncOnCommit: a.fsync === 'true' }),
    PRODUCER_AUTH_PROVIDER: 'static',
    PRODUCER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'bench-producer', raw: { role: 'ADMIN', tid: 'bench' } }),
    WORKER_AUTH_PROVIDER: 'static',
    WORKER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'bench-worker', scopes: ['codeq:claim', 'codeq:heartbeat', 'codeq:abandon', 'codeq:nack', 'codeq:result'], eventTypes: ['*'], raw: { tid: 'bench' } }),
    WORKER_STREAM_ADDR: `127.0.0.1:${wport}`,
    PRODUCER_STREAM_ADDR: `127.0.0.1:${pport}`,
  });
  const profDir = cpuProf ? mkdtempSync(join(os.tmpdir(), 'codeq-grpc-prof-')) : null;
  const args = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, ENTRY] : [ENTRY];
  const proc = spawn(process.execPath, args, { env, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = [];
  const onLog = (b) => {
    for (const l of b.toString().split('\n')) if (l.trim()) (tail.push(l), tail.length > 20 && tail.shift());
  };
  proc.stdout.on('data', onLog);
  proc.stderr.on('data', onLog);
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  server = { proc, pid: proc.pid, dir, profDir, exited, url: `http://127.0.0.1:${port}`, workerAddr: `127.0.0.1:${wport}`, producerAddr: `127.0.0.1:${pport}`, tail };
  let early = null;
  exited.then((x) => (early = x));
  for (const until = Date.now() + 30_000; Date.now() < until; await sleep(100)) {
    if (early) throw new Error(`server exited during start-up (${JSON.stringify(early)}):\n${tail.join('\n')}`);
    if (await healthy(server.url)) return server;
  }
  throw new Error('server not healthy within 30 s');
}

async function stopServer() {
  const s = server;
  if (!s) return {};
  const peak = vmHWMMB(s.pid);
  const t0 = Date.now();
  s.proc.kill('SIGTERM');
  const killer = setTimeout(() => s.proc.kill('SIGKILL'), 30_000);
  const exit = await s.exited;
  clearTimeout(killer);
  rmSync(s.dir, { recursive: true, force: true });
  server = null;
  const profiles = s.profDir ? readdirSync(s.profDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(s.profDir, f)).sort() : [];
  return { vmHWMMB: r1(peak), exit: { ...exit, afterMs: Date.now() - t0 }, profiles };
}

// ------------------------------------------------------------------ one scenario = one http-bench run
function httpBench(args, env) {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [join(here, 'http-bench.mjs'), ...args, '--json', '--timeout-s', a['timeout-s']], { env: { ...process.env, ...env }, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    kids.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('exit', (code) => {
      kids.delete(p);
      const line = stdout.trim().split('\n').pop();
      try {
        res({ code, record: JSON.parse(line) });
      } catch {
        rej(new Error(`http-bench exited ${code} without a JSON line:\n${stderr.split('\n').slice(-15).join('\n')}`));
      }
    });
  });
}

async function runOn(path, scenarioArgs, batch) {
  const s = server;
  const before = threadCpu(s.pid);
  const { record } = await httpBench(
    ['--url', s.url, '--token', TOKEN, '--server-pid', String(s.pid), '--mode', 'grpc', '--worker-addr', s.workerAddr, '--producer-addr', s.producerAddr, '--inflight', String(INFLIGHT), '--concurrency', String(CREDITS), ...scenarioArgs],
    { CODEQ_BENCH_GRPC_BATCH: String(batch), CODEQ_BENCH_GRPC_CREDITS: String(CREDITS) },
  );
  const split = threadSplit(s.pid, before, threadCpu(s.pid));
  const r = record.results.find((x) => !x.warmup) ?? {};
  const n = r.n ?? 0;
  const us = (sec) => r1((sec / n) * 1e6);
  return {
    path,
    scenario: r.scenario,
    ok: !!r.ok,
    error: r.error,
    n,
    cyclesPerSec: r.cyclesPerSec ?? null,
    createRateDuringFull: r.createRateDuringFull ?? null,
    achievedRate: r.achievedRate ?? null,
    latencyMs: r.latencyMs ?? null,
    duplicates: r.duplicates ?? 0,
    cpuUsPerTask: {
      server: r.cpuUsPerTask?.server ?? null,
      serverMain: us(split.main),
      serverWriter: us(split.writer),
      serverOther: us(split.rest),
      producer: r.cpuUsPerTask?.producer ?? null,
      worker: r.cpuUsPerTask?.worker ?? null,
    },
    otherLoadCpuS: r.machine?.otherCpuS ?? null,
    wallS: r.machine?.wallS ?? null,
    monoWindowUs: r.monoWindowUs,
    serverMaxRssMB: r.serverMaxRssMB ?? null,
  };
}

async function grpcPath(path, batch, cpuProf) {
  info(`${path}: starting the server${cpuProf ? ' (--cpu-prof)' : ''}`);
  await startServer(cpuProf);
  const rows = [];
  try {
    if (WARMUP > 0) {
      info(`${path}: warm-up, full n=${WARMUP} (not reported)`);
      await runOn(path, ['--scenario', 'full', '--n', String(WARMUP)], batch);
    }
    for (const n of NS) {
      for (let rep = 1; rep <= REPS; rep++) {
        info(`${path}: full n=${n}${REPS > 1 ? ` (rep ${rep}/${REPS})` : ''}`);
        rows.push({ ...(await runOn(path, ['--scenario', 'full', '--n', String(n)], batch)), rep });
      }
    }
    if (RATE > 0) {
      info(`${path}: latency ${RATE}/s × ${SECONDS} s`);
      rows.push(await runOn(path, ['--scenario', 'latency', '--rate', String(RATE), '--seconds', String(SECONDS), '--max-inflight-rate', String(Math.max(2000, RATE))], batch));
    }
  } finally {
    const st = await stopServer();
    for (const r of rows) r.serverPeakRssMB = st.vmHWMMB;
    rows.profiles = st.profiles;
    rows.exit = st.exit;
  }
  return rows;
}

// ------------------------------------------------------------------ output
const f = (x, d = 0) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
function table(rows) {
  const head = ['path', 'scenario', 'ok', 'cycles/s', 'p50 ms', 'p99 ms', 'srv µs/task', 'main', 'writer', 'other', 'prod µs', 'wrk µs', 'peak RSS MB', 'foreign CPU s'];
  const lines = rows.map((r) => [
    r.path,
    r.scenario === 'latency' ? `latency ${RATE}/s×${SECONDS}s (sent ${f(r.achievedRate)}/s)` : `full n=${r.n}${REPS > 1 ? ` #${r.rep}` : ''}`,
    r.ok ? 'yes' : 'NO',
    r.scenario === 'full' ? f(r.cyclesPerSec) : '-',
    f(r.latencyMs?.p50, 1),
    f(r.latencyMs?.p99, 1),
    f(r.cpuUsPerTask.server),
    f(r.cpuUsPerTask.serverMain),
    f(r.cpuUsPerTask.serverWriter),
    f(r.cpuUsPerTask.serverOther),
    f(r.cpuUsPerTask.producer),
    f(r.cpuUsPerTask.worker),
    f(r.serverPeakRssMB, 1),
    f(r.otherLoadCpuS, 2),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => String(l[i]).length)));
  const line = (c) => c.map((x, i) => (i < 2 ? String(x).padEnd(w[i]) : String(x).padStart(w[i]))).join('  ');
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...lines.map(line)].join('\n');
}

async function main() {
  const started = new Date().toISOString();
  const rows = [];
  const batched = await grpcPath(`grpc batched (B=${BATCH})`, BATCH, a['cpu-prof']);
  rows.push(...batched);
  if (a.unbatched) rows.push(...(await grpcPath('grpc unbatched', 1, false)));
  let httpRow = null;
  if (a.http) {
    info(`http: full n=${NS[0]} (bench/http-bench.mjs starts its own server)`);
    const { record } = await httpBench(['--mode', 'http', '--scenario', 'full', '--n', String(NS[0]), '--fsync', a.fsync], {});
    const r = record.results.find((x) => !x.warmup) ?? {};
    httpRow = { path: 'http', scenario: 'full', ok: !!r.ok, error: r.error, n: r.n, rep: 1, cyclesPerSec: r.cyclesPerSec ?? null, cpuUsPerTask: { ...r.cpuUsPerTask }, serverPeakRssMB: record.serverPeakRssMB, otherLoadCpuS: r.machine?.otherCpuS ?? null, wallS: r.machine?.wallS ?? null };
    rows.push(httpRow);
  }

  let cpu = 'unknown';
  try {
    cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? cpu;
  } catch {
    /* not Linux */
  }
  const nproc = os.availableParallelism?.() ?? os.cpus().length;
  out('');
  out(`codeQ gRPC stream bench — ${nproc} CPU (${cpu}), node ${process.version}, fsyncOnCommit=${a.fsync}`);
  out(`workload: payload ~200 B; producer ${INFLIGHT} creates in flight; worker ${CREDITS} credits; batched path: ≤ ${BATCH} tasks per message; producer, worker and server share the ${nproc} cores`);
  out('');
  out(table(rows));
  out('');
  out('srv µs/task = server CPU per task (all threads): main = main thread, writer = busiest other thread (the SQLite writer), other = GC/V8 helpers + libuv.');
  const bf = median(batched.filter((r) => r.scenario === 'full' && r.ok && r.n === NS[0]).map((r) => r.cyclesPerSec));
  if (httpRow?.ok && bf) out(`batched stream / HTTP full cycles (n=${NS[0]}, median of ${REPS}): ${f(bf)} / ${f(httpRow.cyclesPerSec)} = ${f(bf / httpRow.cyclesPerSec, 2)}×`);
  for (const r of rows) if (!r.ok) out(`${r.path} ${r.scenario}: INVALID RUN — ${r.error}`);
  for (const r of rows) if (r.wallS && r.otherLoadCpuS > 0.05 * r.wallS * nproc) out(`WARNING: ${r.path} ${r.scenario}: other processes used ~${f(r.otherLoadCpuS, 2)} CPU-s (numbers are pessimistic)`);

  if (batched.profiles?.length) {
    const win = batched.filter((r) => r.monoWindowUs);
    const fromUs = Math.min(...win.map((r) => r.monoWindowUs[0]));
    const toUs = Math.max(...win.map((r) => r.monoWindowUs[1]));
    for (const file of batched.profiles) {
      const main = /\.0\.\d+\.cpuprofile$/.test(file);
      out(`\n== server ${main ? 'main thread' : 'worker thread (SQLite writer)'}: ${file} (window --from-us ${fromUs} --to-us ${toUs})`);
      try {
        out(formatSummary(summarizeProfile(JSON.parse(readFileSync(file, 'utf8')), { fromUs, toUs }), main ? 25 : 6));
      } catch (e) {
        out(`(cannot summarise: ${e.message})`);
      }
    }
  }

  const ok = rows.every((r) => r.ok);
  const record = {
    bench: 'codeq-grpc',
    started,
    ok,
    params: { n: NS, rate: RATE, seconds: SECONDS, batch: BATCH, credits: CREDITS, inflight: INFLIGHT, reps: REPS, warmup: WARMUP, fsyncOnCommit: a.fsync === 'true' },
    host: { nproc, cpu, node: process.version },
    fullCyclesPerSec: Object.fromEntries(NS.map((n) => [n, median(batched.filter((r) => r.scenario === 'full' && r.n === n && r.ok).map((r) => r.cyclesPerSec))])),
    fullCyclesPerSecRuns: Object.fromEntries(NS.map((n) => [n, batched.filter((r) => r.scenario === 'full' && r.n === n && r.ok).map((r) => r.cyclesPerSec)])),
    latency: batched.filter((r) => r.scenario === 'latency').map((r) => ({ rate: RATE, achievedRate: r.achievedRate, ...r.latencyMs }))[0] ?? null,
    serverPeakRssMB: batched[0]?.serverPeakRssMB ?? null,
    httpFullCyclesPerSec: httpRow?.cyclesPerSec ?? null,
    rows,
    profiles: batched.profiles ?? [],
  };
  const line = JSON.stringify(record);
  if (a.out) {
    mkdirSync(dirname(resolve(a.out)), { recursive: true });
    appendFileSync(a.out, line + '\n');
  }
  process.stdout.write(line + '\n');
  process.exitCode = ok ? 0 : 1;
}

main().catch((e) => {
  console.error(e.stack || e.message);
  cleanup();
  process.exit(2);
});
