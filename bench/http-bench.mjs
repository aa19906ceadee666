#!/usr/bin/env node
// codeQ HTTP benchmark: the full task cycle (create -> claim -> result) over HTTP,
// with the same workload as the peer bench (/work/shared/bench/peers). Not part of the test suite.
//
//   node bench/http-bench.mjs [--scenario full|latency|enqdrain|all] [--n 20000] [--rate 1000] [--seconds 10]
//                             [--fsync false|true] [--cpu-prof] [--reps 1] [--warmup 0] [--json] [--out f.jsonl]
//                             [--url http://127.0.0.1:PORT --token T [--server-pid PID]]
//
// Without --url it starts apps/server/dist/main.js itself (fresh temp data dir, SQLite, static
// tokens), measures, stops it with SIGTERM and removes the temp dir. See bench/README.md.
import { fork, spawn, execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadTransport } from './transports/index.mjs';
import { assertLoopback, median, now, r1, r3, sleep, PAYLOAD_BYTES } from './lib/common.mjs';
import { summarizeProfile, formatSummary } from './profile-summary.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..');

const USAGE = `usage: node bench/http-bench.mjs [options]
  --scenario full|latency|enqdrain|all  comma list allowed; all = full,latency (default all)
  --n N                 tasks in the full / enqdrain scenario (20000)
  --rate R --seconds S  latency scenario: R creates/s for S s (1000, 10)
  --fsync false|true    fsyncOnCommit of the server started by the bench (false)
  --url URL --token T   use a running server (loopback only) instead of starting one
  --server-pid PID      with --url: sample that process's RSS / CPU from /proc
  --cpu-prof            start the server under --cpu-prof; prints the profile path and a summary
  --cpu-prof-dir DIR    where the profile goes (default: a new dir under the OS temp dir)
  --mode http|grpc      transport of producer and worker (grpc: the worker/producer streams; the bench
                        starts the server with WORKER_STREAM_ADDR / PRODUCER_STREAM_ADDR on free ports,
                        with --url give --worker-addr HOST:PORT --producer-addr HOST:PORT)
  --client auto|undici|http   HTTP client in producer/worker (auto: undici from apps/server, else node:http)
  --concurrency C       worker slots (64); --inflight P producer creates in flight (64)
  --reps K              repeat each scenario K times, interleaved (1); --warmup N untimed tasks first (0)
  --timeout-s T         per scenario run deadline (300); children are killed past it
  --json                stdout carries only the JSON line (the table goes to stderr)
  --out FILE            also append the JSON line to FILE`;

let a;
try {
  ({ values: a } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'all' },
      n: { type: 'string', default: '20000' },
      rate: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '10' },
      fsync: { type: 'string', default: 'false' },
      url: { type: 'string' },
      'worker-addr': { type: 'string' },
      'producer-addr': { type: 'string' },
      token: { type: 'string' },
      'server-pid': { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'cpu-prof-dir': { type: 'string' },
      mode: { type: 'string', default: 'http' },
      client: { type: 'string', default: 'auto' },
      concurrency: { type: 'string', default: '64' },
      inflight: { type: 'string', default: '64' },
      'max-inflight-rate': { type: 'string', default: '2000' },
      'lease-seconds': { type: 'string', default: '30' },
      'wait-seconds': { type: 'string', default: '5' },
      reps: { type: 'string', default: '1' },
      warmup: { type: 'string', default: '0' },
      'timeout-s': { type: 'string', default: '300' },
      'server-entry': { type: 'string', default: join(repoRoot, 'apps/server/dist/main.js') },
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

const posInt = (name, v) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 0) {
    console.error(`--${name} must be a non-negative integer (got ${v})`);
    process.exit(64);
  }
  return x;
};
const N = posInt('n', a.n);
const RATE = Number(a.rate);
const SECONDS = Number(a.seconds);
const C = posInt('concurrency', a.concurrency);
const P = posInt('inflight', a.inflight);
const MAX_INFLIGHT_RATE = posInt('max-inflight-rate', a['max-inflight-rate']);
const REPS = Math.max(1, posInt('reps', a.reps));
const WARMUP = posInt('warmup', a.warmup);
const TIMEOUT_MS = Number(a['timeout-s']) * 1000;
const LEASE = posInt('lease-seconds', a['lease-seconds']);
const WAIT = posInt('wait-seconds', a['wait-seconds']);
if (!['true', 'false'].includes(a.fsync)) {
  console.error('--fsync must be true or false');
  process.exit(64);
}
const FSYNC = a.fsync === 'true';
if (!(RATE > 0 && SECONDS > 0 && TIMEOUT_MS > 0)) {
  console.error('--rate, --seconds and --timeout-s must be > 0');
  process.exit(64);
}
const SCEN_LIST = (a.scenario === 'all' ? 'full,latency' : a.scenario).split(',').map((s) => s.trim()).filter(Boolean);
for (const s of SCEN_LIST) {
  if (!['full', 'latency', 'enqdrain'].includes(s)) {
    console.error(`unknown scenario ${s}\n${USAGE}`);
    process.exit(64);
  }
}
if (a.url && a['cpu-prof']) {
  console.error('--cpu-prof needs the bench to start the server (no --url)');
  process.exit(64);
}

// With --json the table goes to stderr so that stdout is exactly one JSON line.
const out = (s = '') => (a.json ? process.stderr : process.stdout).write(s + '\n');
const info = (s) => process.stderr.write(`[bench] ${s}\n`);

// ---------------------------------------------------------------- children we own
const children = new Set(); // role processes (ChildProcess)
let server = null; // {proc, pid, tmpDir, profDir, url}
function killRoles() {
  for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
}
function emergencyCleanup() {
  killRoles();
  if (server?.proc && server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill('SIGKILL');
  if (server?.tmpDir) rmSync(server.tmpDir, { recursive: true, force: true });
}
process.on('exit', emergencyCleanup);
for (const s of ['SIGINT', 'SIGTERM']) {
  process.on(s, () => {
    info(`${s}: stopping own children`);
    emergencyCleanup();
    process.exit(130);
  });
}

// ---------------------------------------------------------------- /proc helpers
function procStatusKB(pid, key) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
/** user+system CPU seconds of a process (all its threads) from /proc/<pid>/stat. */
function procCpuS(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 utime, 15 stime
  } catch {
    return NaN;
  }
}

/** Busy CPU seconds of the whole machine (all cores) from /proc/stat, to spot foreign load. */
function machineBusyS() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((x, y) => x + y, 0); // user nice system idle iowait irq softirq steal
    return (total - f[3] - f[4]) / CLK_TCK;
  } catch {
    return NaN;
  }
}
/** CLOCK_MONOTONIC in µs: the clock of V8 .cpuprofile timestamps (for profile windows). */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);
const selfCpuS = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Samples VmRSS every 200 ms; window() gives the max since the last mark. */
function startRssSampler(pid) {
  const st = { max: 0, windowMax: 0, samples: 0 };
  const tick = () => {
    const kb = procStatusKB(pid, 'VmRSS');
    if (Number.isFinite(kb)) {
      st.samples++;
      if (kb > st.max) st.max = kb;
      if (kb > st.windowMax) st.windowMax = kb;
    }
  };
  tick();
  const t = setInterval(tick, 200);
  t.unref();
  return {
    mark() {
      tick();
      st.windowMax = 0;
      tick();
    },
    windowMaxMB: () => (tick(), st.windowMax / 1024),
    maxMB: () => (tick(), st.max / 1024),
    samples: () => st.samples,
    stop: () => clearInterval(t),
  };
}

// ---------------------------------------------------------------- server lifecycle
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

function httpGet(url, timeoutMs = 1000) {
  return new Promise((res) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => res(0));
  });
}

const CONFIG_ENV_VARS = [
  'PORT', 'HOST', 'ENV', 'TIMEZONE', 'LOG_LEVEL', 'LOG_FORMAT', 'PERSISTENCE_PROVIDER', 'PERSISTENCE_CONFIG',
  'PRODUCER_AUTH_PROVIDER', 'PRODUCER_AUTH_CONFIG', 'WORKER_AUTH_PROVIDER', 'WORKER_AUTH_CONFIG',
  'ALLOW_PRODUCER_AS_WORKER', 'WORKER_STREAM_ADDR', 'PRODUCER_STREAM_ADDR', 'LOCAL_ARTIFACTS_DIR',
  'DEFAULT_LEASE_SECONDS', 'REQUEUE_INSPECT_LIMIT', 'MAX_ATTEMPTS_DEFAULT', 'BACKOFF_POLICY', 'BACKOFF_BASE_SECONDS',
  'BACKOFF_MAX_SECONDS', 'WEBHOOK_HMAC_SECRET', 'CODEQ_RETENTION_SECONDS', 'CODEQ_MAX_BODY_BYTES',
  'CODEQ_SHUTDOWN_GRACE_SECONDS', 'CODEQ_CONFIG_PATH',
];
const BENCH_TOKEN = 'bench-token';

async function startServer() {
  const entry = resolve(a['server-entry']);
  if (!existsSync(entry)) {
    throw new Error(`${entry} does not exist; build the server first: cd ${repoRoot} && npx pnpm@12.4.2 --filter @codeq/server build`);
  }
  const port = await freePort();
  const streams = a.mode === 'grpc' ? { workerAddr: `127.0.0.1:${await freePort()}`, producerAddr: `127.0.0.1:${await freePort()}` } : {};
  const tmpDir = mkdtempSync(join(os.tmpdir(), 'codeq-bench-'));
  const env = { ...process.env };
  for (const k of CONFIG_ENV_VARS) delete env[k]; // nothing from the caller's shell leaks into the server config
  Object.assign(env, {
    PORT: String(port),
    HOST: '127.0.0.1',
    PERSISTENCE_PROVIDER: 'sqlite',
    PERSISTENCE_CONFIG: JSON.stringify({ path: tmpDir, fsyncOnCommit: FSYNC }),
    LOG_LEVEL: 'warn',
    PRODUCER_AUTH_PROVIDER: 'static',
    PRODUCER_AUTH_CONFIG: JSON.stringify({ token: BENCH_TOKEN, subject: 'bench-producer', raw: { role: 'ADMIN', tid: 'bench' } }),
    WORKER_AUTH_PROVIDER: 'static',
    WORKER_AUTH_CONFIG: JSON.stringify({
      token: BENCH_TOKEN,
      subject: 'bench-worker',
      scopes: ['codeq:claim', 'codeq:heartbeat', 'codeq:abandon', 'codeq:nack', 'codeq:result', 'codeq:subscribe'],
      eventTypes: ['*'],
      raw: { tid: 'bench' },
    }),
  });
  if (streams.workerAddr) Object.assign(env, { WORKER_STREAM_ADDR: streams.workerAddr, PRODUCER_STREAM_ADDR: streams.producerAddr });
  let profDir;
  const nodeArgs = [];
  if (a['cpu-prof']) {
    profDir = resolve(a['cpu-prof-dir'] || mkdtempSync(join(os.tmpdir(), 'codeq-bench-prof-')));
    mkdirSync(profDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profDir}`);
  }
  const proc = spawn(process.execPath, [...nodeArgs, entry], { env, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  server = { proc, pid: proc.pid, tmpDir, profDir, url: `http://127.0.0.1:${port}`, port, ...streams, logTail: [], logLines: 0 };
  const onLog = (buf) => {
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      server.logLines++;
      server.logTail.push(line);
      if (server.logTail.length > 20) server.logTail.shift();
      if (server.logLines <= 20) process.stderr.write(`[server] ${line.slice(0, 400)}\n`);
      else if (server.logLines === 21) process.stderr.write('[server] … (further server output suppressed; count in the JSON)\n');
    }
  };
  proc.stdout.on('data', onLog);
  proc.stderr.on('data', onLog);
  const exited = new Promise((r) => proc.once('exit', (code, sig) => r({ code, sig })));
  server.exited = exited;
  const deadline = Date.now() + 30_000;
  let early;
  exited.then((x) => (early = x));
  while (Date.now() < deadline) {
    if (early) throw new Error(`server exited during start-up (code ${early.code}, signal ${early.sig}); last output:\n${server.logTail.join('\n')}`);
    if ((await httpGet(`${server.url}/healthz`)) === 200) return server;
    await sleep(100);
  }
  throw new Error('server did not answer GET /healthz with 200 within 30 s');
}

async function stopServer() {
  if (!server) return {};
  const r = {};
  const { proc } = server;
  if (proc.exitCode === null && proc.signalCode === null) {
    const t0 = Date.now();
    proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    const x = await server.exited;
    clearTimeout(killer);
    r.exit = { code: x.code, signal: x.sig, afterMs: Date.now() - t0 };
  }
  if (server.profDir) {
    r.profiles = readdirSync(server.profDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(server.profDir, f))
      .sort((x, y) => (threadOf(x) === 'main thread' ? -1 : threadOf(y) === 'main thread' ? 1 : x.localeCompare(y)));
  }
  rmSync(server.tmpDir, { recursive: true, force: true });
  server.tmpDir = null;
  return r;
}

// ---------------------------------------------------------------- role processes
function spawnRole(init) {
  const ch = fork(join(here, 'lib/role.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(ch);
  const waiters = new Map();
  let failure;
  const rejectAll = (err) => {
    failure = err;
    for (const [, w] of waiters) w.reject(err);
    waiters.clear();
  };
  ch.on('message', (m) => {
    if (m.type === 'error') return rejectAll(new Error(`${init.role} process failed: ${m.message}`));
    const w = waiters.get(m.type);
    if (w) {
      waiters.delete(m.type);
      w.resolve(m);
    }
  });
  ch.on('exit', (code, sig) => {
    children.delete(ch);
    if (waiters.size) rejectAll(failure || new Error(`${init.role} process exited early (code ${code}, signal ${sig})`));
  });
  ch.send({ type: 'init', ...init });
  return {
    pid: ch.pid,
    wait: (type) =>
      new Promise((res, rej) => {
        if (failure) return rej(failure);
        waiters.set(type, { resolve: res, reject: rej });
      }),
    send: (m) => ch.connected && ch.send(m),
    async close() {
      if (ch.exitCode !== null || ch.signalCode !== null) return;
      const exited = new Promise((r) => ch.once('exit', r));
      if (ch.connected) ch.send({ type: 'close' });
      const t = setTimeout(() => ch.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
    kill: () => ch.exitCode === null && ch.signalCode === null && ch.kill('SIGKILL'),
  };
}

function withTimeout(p, ms, what, onTimeout) {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => {
      t = setTimeout(async () => {
        try {
          await onTimeout?.();
        } catch {
          /* best effort */
        }
        rej(new Error(`timeout after ${ms / 1000} s: ${what}`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(t));
}

// ---------------------------------------------------------------- scenarios
let target; // {url, token, pid}
let transportDesc;
let rss; // sampler or null
let runSeq = 0;

function cfgFor(scenario) {
  const command = `bench_${scenario}_${(++runSeq).toString()}_${Date.now().toString(36)}_${process.pid}`;
  return { url: target.url, token: target.token, command, leaseSeconds: LEASE, waitSeconds: WAIT, client: a.client, workerAddr: target.workerAddr, producerAddr: target.producerAddr };
}

function validate(pr, wr, n) {
  const errs = [];
  if (pr.errors) errs.push(`producer: ${pr.errors} create errors, first: ${pr.firstErr}`);
  else if (pr.acked < n) errs.push(`producer created only ${pr.acked}/${n} tasks before the ${TIMEOUT_MS / 1000} s deadline`);
  if (wr.uniq !== n) errs.push(`worker completed ${wr.uniq}/${n} distinct tasks (errors ${wr.errors}, first: ${wr.firstErr})`);
  if (wr.bad) errs.push(`worker saw ${wr.bad} completions with an out-of-range seq`);
  return errs;
}

/** One scenario run with its own command, producer and worker; never touches the queue itself. */
async function runScenario(scenario, n) {
  const cfg = cfgFor(scenario);
  const live = []; // role handles, killed on timeout
  const serverCpu0 = target.pid ? procCpuS(target.pid) : NaN;
  const busy0 = machineBusyS();
  const self0 = selfCpuS();
  const wall0 = now();
  const mono0 = monoUs();
  rss?.mark();
  const spawnTracked = (init) => {
    const h = spawnRole({ transport: a.mode, cfg, ...init });
    live.push(h);
    return h;
  };
  let worker;
  const body = async () => {
    const total = scenario === 'latency' ? Math.round(RATE * SECONDS) : n;
    const deadline = now() + TIMEOUT_MS;
    let pr, wr, tGo;
    if (scenario === 'enqdrain') {
      const p = spawnTracked({ role: 'producer', inflight: P });
      await p.wait('ready');
      const pDone = p.wait('done');
      p.send({ type: 'go', mode: 'burst', n: total, inflight: P, deadline });
      pr = await pDone;
      await p.close();
      if (pr.errors) return { pr, wr: { uniq: 0 }, total };
      worker = spawnTracked({ role: 'worker', expected: total, concurrency: C, startImmediately: false });
      await worker.wait('ready');
      const wDone = worker.wait('done');
      tGo = now();
      worker.send({ type: 'go' });
      wr = await wDone;
      await worker.close();
    } else {
      worker = spawnTracked({ role: 'worker', expected: total, concurrency: C, startImmediately: true, recordLatency: scenario === 'latency' });
      await worker.wait('ready');
      const p = spawnTracked({ role: 'producer', inflight: P });
      await p.wait('ready');
      const pDone = p.wait('done');
      const wDone = worker.wait('done');
      if (scenario === 'latency') p.send({ type: 'go', mode: 'rate', rate: RATE, seconds: SECONDS, maxInflight: MAX_INFLIGHT_RATE, deadline });
      else p.send({ type: 'go', mode: 'burst', n: total, inflight: P, deadline });
      pr = await pDone;
      if (pr.errors || pr.acked < total) {
        // the worker can never finish: collect what it has and stop
        worker.send({ type: 'report' });
      }
      wr = await wDone;
      await Promise.all([p.close(), worker.close()]);
    }
    return { pr, wr, total, tGo };
  };

  let partialWorker;
  const res = await withTimeout(body(), TIMEOUT_MS, `${scenario} (n=${n})`, async () => {
    if (worker) {
      const pw = worker.wait('done').catch(() => undefined);
      worker.send({ type: 'report' });
      partialWorker = await Promise.race([pw, sleep(2000)]);
    }
    for (const h of live) h.kill();
  }).catch((e) => ({ error: e.message }));
  for (const h of live) h.kill(); // no-op for exited processes

  const serverCpuS = target.pid ? procCpuS(target.pid) - serverCpu0 : NaN;
  const machineS = machineBusyS() - busy0;
  const orchestratorS = selfCpuS() - self0;
  const wallS = (now() - wall0) / 1000;
  const monoWindowUs = [mono0, monoUs()];
  const serverMaxRssMB = rss ? rss.windowMaxMB() : NaN;
  const row = { scenario, commandName: cfg.command, monoWindowUs };
  if (res.error) {
    Object.assign(row, {
      ok: false,
      error: res.error,
      partial: partialWorker ? { completed: partialWorker.uniq, duplicates: partialWorker.dup, errors: partialWorker.errors, firstErr: partialWorker.firstErr } : undefined,
    });
    return row;
  }
  const { pr, wr, total, tGo } = res;
  const errs = validate(pr, wr, total);
  const perTask = (s) => r1((s / total) * 1e6); // µs CPU per task
  const producerCpuS = pr.cpuUserS + pr.cpuSysS;
  const workerCpuS = wr.cpuUserS !== undefined ? wr.cpuUserS + wr.cpuSysS : NaN;
  Object.assign(row, {
    ok: errs.length === 0,
    error: errs.length ? errs.join('; ') : undefined,
    n: total,
    completed: wr.uniq,
    duplicates: wr.dup ?? 0,
    producerErrors: pr.errors,
    workerErrors: wr.errors ?? 0,
    firstProducerError: pr.firstErr,
    firstWorkerError: wr.firstErr,
  });
  if (scenario === 'full') {
    Object.assign(row, {
      cyclesPerSec: r1(total / ((wr.tLast - pr.tFirst) / 1000)),
      wallS: r3((wr.tLast - pr.tFirst) / 1000),
      createRateDuringFull: r1(total / ((pr.tLast - pr.tFirst) / 1000)),
    });
  } else if (scenario === 'enqdrain') {
    Object.assign(row, {
      enqueuePerSec: r1(total / ((pr.tLast - pr.tFirst) / 1000)),
      drainPerSec: r1(total / ((wr.tLast - tGo) / 1000)),
      enqueueWallS: r3((pr.tLast - pr.tFirst) / 1000),
      drainWallS: r3((wr.tLast - tGo) / 1000),
    });
  } else {
    const L = wr.latency || {};
    Object.assign(row, {
      rate: RATE,
      seconds: SECONDS,
      achievedRate: r1(pr.achievedRate),
      maxScheduleLagMs: r1(pr.maxScheduleLagMs),
      latencyMs: { p50: r3(L.p50), p90: r3(L.p90), p99: r3(L.p99), max: r3(L.max), mean: r3(L.mean) },
    });
  }
  Object.assign(row, {
    serverMaxRssMB: r1(serverMaxRssMB),
    serverCpuS: r3(serverCpuS),
    producerCpuS: r3(producerCpuS),
    workerCpuS: r3(workerCpuS),
    cpuUsPerTask: { server: perTask(serverCpuS), producer: perTask(producerCpuS), worker: perTask(workerCpuS) },
    // whole-machine busy CPU while this run (incl. process start-up) lasted, and the part not
    // explained by server + producer + worker + orchestrator: other load on the box (only
    // meaningful when the server's pid is known)
    machine: {
      wallS: r3(wallS),
      busyCpuS: r3(machineS),
      utilisation: r3(machineS / (wallS * (os.availableParallelism?.() ?? os.cpus().length))),
      otherCpuS: target.pid ? r3(machineS - serverCpuS - producerCpuS - workerCpuS - orchestratorS) : null,
    },
    producerMaxRssMB: r1(pr.maxRssMB),
    workerMaxRssMB: r1(wr.maxRssMB),
    http: { create: pr.createStatuses, claim: wr.claimStatuses, result: wr.resultStatuses },
    emptyClaims: wr.empty,
    responseShape: wr.payloadNotString || wr.wrongCommand ? { payloadNotString: wr.payloadNotString, wrongCommand: wr.wrongCommand, first: wr.firstShapeIssue } : undefined,
  });
  return row;
}

// ---------------------------------------------------------------- environment facts
function hostFacts() {
  let cpuModel = 'unknown';
  try {
    cpuModel = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? cpuModel;
  } catch {
    /* not Linux */
  }
  let nproc = os.availableParallelism?.() ?? os.cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    /* keep os value */
  }
  return { node: process.version, nproc, cpuModel, memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), loadavg1AtStart: r1(os.loadavg()[0]) };
}
function gitCommit() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    let dirty = null;
    try {
      dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().length > 0;
    } catch {
      /* ignore */
    }
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

// ---------------------------------------------------------------- output
/** Node names profiles CPU.<date>.<time>.<pid>.<threadId>.<seq>.cpuprofile; thread 0 is the main thread. */
function threadOf(file) {
  const m = file.match(/\.(\d+)\.(\d+)\.cpuprofile$/);
  if (!m) return 'thread ?';
  return m[1] === '0' ? 'main thread' : `worker thread ${m[1]}`;
}
const fmt = (x, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
function table(rows) {
  const head = ['scenario', 'ok', 'n', 'cycles/s', 'sent/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'srv RSS MB', 'srv CPU s', 'prod CPU s', 'wrk CPU s', 'dup', 'err'];
  const lines = rows.map((r) => {
    let tput = r.cyclesPerSec;
    let scen = r.scenario + (r.rep > 1 ? ` #${r.rep}` : '');
    if (r.scenario === 'enqdrain') scen += ` (enq ${fmt(r.enqueuePerSec, 0)}/s, drain ${fmt(r.drainPerSec, 0)}/s)`;
    if (r.warmup) scen = `warmup`;
    return [
      scen,
      r.ok ? 'yes' : 'NO',
      r.n ?? '-',
      fmt(tput),
      fmt(r.achievedRate),
      fmt(r.latencyMs?.p50, 2),
      fmt(r.latencyMs?.p90, 2),
      fmt(r.latencyMs?.p99, 2),
      fmt(r.latencyMs?.max, 2),
      fmt(r.serverMaxRssMB),
      fmt(r.serverCpuS, 2),
      fmt(r.producerCpuS, 2),
      fmt(r.workerCpuS, 2),
      r.duplicates ?? '-',
      (r.producerErrors ?? 0) + (r.workerErrors ?? 0),
    ].map(String);
  });
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...lines.map(line)].join('\n');
}

// ---------------------------------------------------------------- main
async function main() {
  const started = new Date().toISOString();
  const host = hostFacts();
  const git = gitCommit();
  let transport;
  try {
    transport = await loadTransport(a.mode);
    transportDesc = await transport.describe({ client: a.client });
  } catch (e) {
    console.error(`cannot load the ${a.mode} transport: ${e.message}`);
    process.exit(2);
  }

  let serverInfo;
  try {
    if (a.url) {
      assertLoopback(a.url, '--url');
      const pid = a['server-pid'] ? posInt('server-pid', a['server-pid']) : null;
      target = { url: a.url.replace(/\/+$/, ''), token: a.token ?? process.env.CODEQ_TOKEN ?? '', pid, workerAddr: a['worker-addr'], producerAddr: a['producer-addr'] };
      if (a.mode === 'grpc') {
        if (!target.workerAddr || !target.producerAddr) throw new Error('--mode grpc with --url needs --worker-addr and --producer-addr');
        for (const [k, v] of [['--worker-addr', target.workerAddr], ['--producer-addr', target.producerAddr]]) assertLoopback(`http://${v}`, k);
      }
      serverInfo = { startedByBench: false, url: target.url, pid, fsyncOnCommit: null };
    } else {
      info(`starting ${a['server-entry']} (sqlite, fsyncOnCommit=${FSYNC}${a['cpu-prof'] ? ', --cpu-prof' : ''})`);
      const s = await startServer();
      target = { url: s.url, token: a.token ?? BENCH_TOKEN, pid: s.pid, workerAddr: s.workerAddr, producerAddr: s.producerAddr };
      serverInfo = { startedByBench: true, url: s.url, pid: s.pid, fsyncOnCommit: FSYNC, dataDir: s.tmpDir };
      info(`server pid ${s.pid} healthy at ${s.url}`);
    }
    await transport.preflight({ url: target.url, token: target.token, client: a.client, waitSeconds: 0, workerAddr: target.workerAddr, producerAddr: target.producerAddr });
  } catch (e) {
    console.error(`PREFLIGHT FAILED: ${e.message}`);
    await stopServer().catch(() => {});
    process.exit(2);
  }
  rss = target.pid ? startRssSampler(target.pid) : null;

  const rows = [];
  if (WARMUP > 0) {
    info(`warm-up: full cycle of ${WARMUP} tasks (not reported in the summary)`);
    const w = await runScenario('full', WARMUP);
    w.warmup = true;
    rows.push(w);
    if (!w.ok) info(`warm-up failed: ${w.error}`);
  }
  for (let rep = 1; rep <= REPS; rep++) {
    for (const scen of SCEN_LIST) {
      const label = scen === 'latency' ? `latency ${RATE}/s × ${SECONDS}s` : `${scen} n=${N}`;
      info(`running ${label}${REPS > 1 ? ` (rep ${rep}/${REPS})` : ''} …`);
      const row = await runScenario(scen, N);
      row.rep = rep;
      rows.push(row);
      info(row.ok ? `  ok` : `  FAILED: ${row.error}`);
    }
  }

  // peak RSS: VmHWM of the server process before it is stopped, and the max of the 200 ms VmRSS samples
  const serverPeak = target.pid
    ? { vmHWMMB: r1(procStatusKB(target.pid, 'VmHWM') / 1024), maxSampledVmRSSMB: r1(rss.maxMB()), rssSamples: rss.samples(), cpuSTotal: r3(procCpuS(target.pid)) }
    : { vmHWMMB: null, maxSampledVmRSSMB: null };
  rss?.stop();
  Object.assign(serverInfo, serverPeak);
  if (server) {
    const st = await stopServer();
    serverInfo.exit = st.exit;
    serverInfo.outputLines = server.logLines;
    if (server.logLines) serverInfo.lastOutput = server.logTail.slice(-5);
    if (st.profiles) serverInfo.cpuProfiles = st.profiles;
    delete serverInfo.dataDir; // removed
  }

  const measured = rows.filter((r) => !r.warmup);
  const ok = measured.every((r) => r.ok);
  const fulls = measured.filter((r) => r.scenario === 'full' && r.ok);
  const lats = measured.filter((r) => r.scenario === 'latency' && r.ok);
  const pick = (arr, f) => r3(median(arr.map(f)));
  const summary = {
    fullCyclesPerSec: fulls.length ? r1(median(fulls.map((r) => r.cyclesPerSec))) : null,
    fullCyclesPerSecMinMax: fulls.length > 1 ? [Math.min(...fulls.map((r) => r.cyclesPerSec)), Math.max(...fulls.map((r) => r.cyclesPerSec))] : undefined,
    latencyRate: lats.length ? RATE : null,
    latencyAchievedRate: lats.length ? pick(lats, (r) => r.achievedRate) : null,
    latencyP50Ms: lats.length ? pick(lats, (r) => r.latencyMs.p50) : null,
    latencyP90Ms: lats.length ? pick(lats, (r) => r.latencyMs.p90) : null,
    latencyP99Ms: lats.length ? pick(lats, (r) => r.latencyMs.p99) : null,
    latencyMaxMs: lats.length ? pick(lats, (r) => r.latencyMs.max) : null,
    serverPeakRssMB: serverInfo.vmHWMMB,
    serverMaxSampledRssMB: serverInfo.maxSampledVmRSSMB,
    producerCpuS: fulls.length ? pick(fulls, (r) => r.producerCpuS) : null,
    workerCpuS: fulls.length ? pick(fulls, (r) => r.workerCpuS) : null,
    serverCpuS: fulls.length ? pick(fulls, (r) => r.serverCpuS) : null,
    duplicates: measured.reduce((s, r) => s + (r.duplicates || 0), 0),
  };

  out('');
  out(`codeQ bench (${a.mode}) — ${host.nproc} CPU (${host.cpuModel}), node ${host.node}, git ${git.commit ?? '?'}${git.dirty ? '+dirty' : ''}, ` +
      `fsyncOnCommit=${serverInfo.fsyncOnCommit ?? 'n/a (--url)'}, ${transportDesc.transport}/${transportDesc.client} ${transportDesc.clientVersion}`);
  out(`workload: producer ${P} creates in flight, worker ${C} slots, payload ~${PAYLOAD_BYTES} B, lease ${LEASE} s, ${a.mode === 'http' ? `long-poll ${WAIT} s` : 'gRPC streams'}; everything shares the same ${host.nproc} cores`);
  out('');
  out(table(rows));
  out('');
  if (target.pid) out(`server peak RSS: VmHWM ${fmt(serverInfo.vmHWMMB)} MB, max sampled VmRSS ${fmt(serverInfo.maxSampledVmRSSMB)} MB (${serverInfo.rssSamples} samples @200 ms); server CPU total ${fmt(serverInfo.cpuSTotal, 2)} s`);
  else out('server RSS/CPU: not measured (--url without --server-pid)');
  for (const r of measured) {
    if (r.ok && r.cpuUsPerTask) out(`${r.scenario}${REPS > 1 ? ` #${r.rep}` : ''}: CPU µs per task — server ${r.cpuUsPerTask.server ?? "-"}, producer ${r.cpuUsPerTask.producer ?? "-"}, worker ${r.cpuUsPerTask.worker ?? "-"}${r.http.create ? `; HTTP statuses create ${JSON.stringify(r.http.create)} claim ${JSON.stringify(r.http.claim)} result ${JSON.stringify(r.http.result)}` : ''}`);
    if (r.machine?.otherCpuS > 0.05 * r.machine.wallS * host.nproc) out(`  WARNING: other processes used ~${fmt(r.machine.otherCpuS, 2)} CPU-s during this ${fmt(r.machine.wallS, 1)} s run (load from outside the bench; numbers are pessimistic)`);
    if (r.responseShape) out(`  response shape issue: ${JSON.stringify(r.responseShape)}`);
    if (!r.ok) out(`${r.scenario}: INVALID RUN — ${r.error}${r.partial ? ` (partial: ${JSON.stringify(r.partial)})` : ''}`);
  }
  if (serverInfo.exit) out(`server stopped: ${serverInfo.exit.signal ? `signal ${serverInfo.exit.signal}` : `exit code ${serverInfo.exit.code}`} after ${serverInfo.exit.afterMs} ms (SIGTERM)`);
  if (serverInfo.cpuProfiles) {
    // window of the measured runs (warm-up excluded) on the profile's monotonic clock
    const win = measured.filter((r) => r.monoWindowUs);
    const fromUs = win.length ? Math.min(...win.map((r) => r.monoWindowUs[0])) : undefined;
    const toUs = win.length ? Math.max(...win.map((r) => r.monoWindowUs[1])) : undefined;
    serverInfo.cpuProfileWindowUs = win.length ? [fromUs, toUs] : undefined;
    if (!serverInfo.cpuProfiles.length) out(`cpu profile: none written in ${server.profDir}`);
    const winArgs = win.length ? ` --from-us ${fromUs} --to-us ${toUs}` : '';
    for (const f of serverInfo.cpuProfiles) {
      out(`cpu profile (${threadOf(f)}): ${f}`);
      out(`  summary of the measurement window: node bench/profile-summary.mjs ${f}${winArgs}`);
    }
    for (const f of serverInfo.cpuProfiles) {
      try {
        const main = threadOf(f) === 'main thread';
        out(`\n== ${threadOf(f)} ==`);
        out(formatSummary(summarizeProfile(JSON.parse(readFileSync(f, 'utf8')), { fromUs, toUs }), main ? 15 : 6));
      } catch (e) {
        out(`  (could not summarise ${f}: ${e.message})`);
      }
    }
  }

  const record = {
    bench: 'codeq-http',
    started,
    ok,
    scenario: SCEN_LIST.join(','),
    n: N,
    ...summary,
    fsyncOnCommit: serverInfo.fsyncOnCommit,
    node: host.node,
    nproc: host.nproc,
    cpuModel: host.cpuModel,
    gitCommit: git.commit,
    gitDirty: git.dirty,
    params: { n: N, rate: RATE, seconds: SECONDS, concurrency: C, producerInflight: P, maxInflightRate: MAX_INFLIGHT_RATE, payloadBytes: PAYLOAD_BYTES, leaseSeconds: LEASE, waitSeconds: WAIT, reps: REPS, warmup: WARMUP, timeoutS: TIMEOUT_MS / 1000, mode: a.mode },
    transport: transportDesc,
    host,
    server: serverInfo,
    results: rows,
  };
  const line = JSON.stringify(record);
  if (a.out) {
    mkdirSync(dirname(resolve(a.out)), { recursive: true });
    appendFileSync(a.out, line + '\n');
  }
  process.stdout.write(line + '\n');
  process.exitCode = ok ? 0 : 1;
}

main().catch(async (e) => {
  console.error(e.stack || e.message);
  killRoles();
  await stopServer().catch(() => {});
  process.exit(1);
});
