#!/usr/bin/env node
// SDK throughput: the full task cycle through @codeq/sdk-producer and @codeq/sdk-worker (not raw
// clients), over the gRPC streams and over HTTP, against `node apps/server/dist/main.js`.
//
//   node bench/sdk-bench.mjs                         # both transports, n=20000, 4 producers, worker concurrency 64
//   node bench/sdk-bench.mjs --mode grpc --n 50000 --producers 8 --inflight 256 --concurrency 128
//   node bench/sdk-bench.mjs --mode grpc --rate 2000 --n 20000   # latency at a fixed submit rate (open loop)
//   node bench/sdk-bench.mjs --json                  # one JSON object per run on stdout
//   node bench/sdk-bench.mjs --mode grpc --cpu-prof  # CPU profiles of the producer/worker processes in ./sdk-bench-prof
//
// Processes (all on this machine, loopback only): the server, one producer process running
// --producers SDK producers (createProducer) that keep --inflight submits in flight in total,
// one worker process running one SDK worker (createWorker, --concurrency slots, a no-op handler),
// and this orchestrator, which only starts/stops things and collects numbers over IPC.
// Each mode gets a fresh server and data directory; an untimed warm-up (--warmup tasks) runs first.
//
// Reported per mode: cycle throughput (n / (last completion − first submit)), submit throughput,
// end-to-end latency (submit start → the worker saw its result acknowledged) and submit latency
// (submit call → resolved) percentiles, plus CPU seconds of the three processes.
// Build first: bash scripts/pnpm.sh exec turbo run build
import { fork, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { makePayload, now, processStats, r1, sleep, summarize } from './lib/common.mjs';

const root = fileURLToPath(new URL('../', import.meta.url));
// SERVER_ENTRY: another build of the server (e.g. a baseline for an A/B comparison in one window).
const SERVER = process.env.SERVER_ENTRY ? resolve(process.env.SERVER_ENTRY) : join(root, 'apps/server/dist/main.js');
const PRODUCER_SDK = pathToFileURL(join(root, 'packages/sdk-producer/dist/index.js')).href;
const WORKER_SDK = pathToFileURL(join(root, 'packages/sdk-worker/dist/index.js')).href;
const TOKEN = 'bench-token';

function parseArgs(argv) {
  const o = { mode: 'both', n: 20000, warmup: 2000, producers: 4, inflight: 64, concurrency: 64, leaseSeconds: 30, rate: 0, fsync: false, json: false, cpuProf: undefined, role: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--mode') o.mode = v();
    else if (a === '--n') o.n = Number(v());
    else if (a === '--warmup') o.warmup = Number(v());
    else if (a === '--producers') o.producers = Number(v());
    else if (a === '--inflight') o.inflight = Number(v());
    else if (a === '--concurrency') o.concurrency = Number(v());
    else if (a === '--lease-seconds') o.leaseSeconds = Number(v());
    else if (a === '--fsync') o.fsync = v() === 'true';
    else if (a === '--rate') o.rate = Number(v());
    else if (a === '--cpu-prof') o.cpuProf = join(process.cwd(), 'sdk-bench-prof');
    else if (a === '--json') o.json = true;
    else if (a === '--role') o.role = v();
    else if (a === '--help' || a === '-h') {
      console.log('usage: node bench/sdk-bench.mjs [--mode grpc|http|both] [--n 20000] [--warmup 2000] [--producers 4] [--inflight 64] [--concurrency 64] [--rate 0] [--lease-seconds 30] [--fsync false|true] [--cpu-prof] [--json]');
      process.exit(0);
    } else {
      console.error(`unknown option ${a}`);
      process.exit(64);
    }
  }
  if (!['grpc', 'http', 'both'].includes(o.mode)) {
    console.error('--mode must be grpc, http or both');
    process.exit(64);
  }
  return o;
}

const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

// ---- child roles -----------------------------------------------------------------------------

/** Waits for {type:'go', ...} from the orchestrator. */
const nextMessage = (type) => new Promise((resolve) => process.on('message', function h(m) { if (m.type === type) { process.off('message', h); resolve(m); } }));

async function producerRole(cfg) {
  const { createProducer } = await import(PRODUCER_SDK);
  const target = cfg.mode === 'grpc' ? { grpcAddress: cfg.producerAddr } : { baseUrl: cfg.url };
  const producers = Array.from({ length: cfg.producers }, () => createProducer({ ...target, token: TOKEN }));
  const run = async (command, n, rate) => {
    let next = 0;
    const lat = [];
    const t0 = now();
    const lane = async (p) => {
      for (;;) {
        const seq = next++;
        if (seq >= n) return;
        // --rate: submit i is due at t0 + i/rate (open loop, within the --inflight bound).
        if (rate > 0) {
          const due = t0 + (seq * 1000) / rate;
          const wait = due - now();
          if (wait > 1) await sleep(wait);
        }
        const start = now();
        await p.submit(command, makePayload(seq, start));
        lat.push(now() - start);
      }
    };
    // --inflight submits in flight in total, spread over the producers.
    await Promise.all(Array.from({ length: cfg.inflight }, (_, i) => lane(producers[i % producers.length])));
    return { firstSubmitAt: t0, lastSubmitAt: now(), submitLatencyMs: summarize(lat) };
  };
  process.send({ type: 'ready' });
  for (;;) {
    const m = await nextMessage('go');
    if (m.stop) break;
    const r = await run(m.command, m.n, m.rate ?? 0);
    process.send({ type: 'done', ...r, stats: processStats() });
  }
  await Promise.all(producers.map((p) => p.close()));
  process.exit(0);
}

async function workerRole(cfg) {
  const { createWorker } = await import(WORKER_SDK);
  const target = cfg.mode === 'grpc' ? { grpcAddress: cfg.workerAddr } : { baseUrl: cfg.url };
  let expect = Infinity;
  let done = 0;
  let lat = [];
  let lastAt = 0;
  let onAll = () => undefined;
  const t0Of = new Map();
  const errors = [];
  const commands = cfg.commands;
  const worker = createWorker({
    ...target,
    token: TOKEN,
    commands,
    concurrency: cfg.concurrency,
    leaseSeconds: cfg.leaseSeconds,
    handler: (task) => {
      t0Of.set(task.id, task.payloadJson.t0);
      return { ok: true };
    },
    onEvent: (e) => {
      if (e.type === 'completed') {
        const t0 = t0Of.get(e.taskId);
        t0Of.delete(e.taskId);
        lastAt = now();
        if (t0 !== undefined) lat.push(lastAt - t0);
        if (++done >= expect) onAll();
      } else if (e.type === 'error' || e.type === 'lease-lost' || e.type === 'nacked') {
        if (errors.length < 5) errors.push(`${e.type}: ${e.error?.message ?? e.reason ?? ''}`);
      }
    },
  }).start();
  process.send({ type: 'ready' });
  for (;;) {
    const m = await nextMessage('expect');
    if (m.stop) break;
    done = 0;
    lat = [];
    expect = m.n;
    await new Promise((resolve) => {
      onAll = resolve;
      if (done >= expect) resolve();
    });
    expect = Infinity;
    process.send({ type: 'done', lastCompletedAt: lastAt, latencyMs: summarize(lat), errors, stats: processStats() });
  }
  await worker.stop({ deadlineMs: 2000 });
  process.exit(0);
}

// ---- orchestrator ----------------------------------------------------------------------------

async function startServer(fsync) {
  const dir = await mkdtemp(join(tmpdir(), 'codeq-sdk-bench-'));
  const [http, w, p] = [await freePort(), await freePort(), await freePort()];
  const env = {
    PATH: process.env.PATH ?? '',
    HOST: '127.0.0.1',
    PORT: String(http),
    WORKER_STREAM_ADDR: `127.0.0.1:${w}`,
    PRODUCER_STREAM_ADDR: `127.0.0.1:${p}`,
    PERSISTENCE_PROVIDER: 'sqlite',
    PERSISTENCE_CONFIG: JSON.stringify({ path: dir, fsyncOnCommit: fsync }),
    PRODUCER_AUTH_PROVIDER: 'static',
    PRODUCER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'bench-producer', raw: { tid: 'bench' } }),
    WORKER_AUTH_PROVIDER: 'static',
    WORKER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'bench-worker', scopes: ['codeq:claim', 'codeq:heartbeat', 'codeq:abandon', 'codeq:nack', 'codeq:result'], eventTypes: ['*'], raw: { tid: 'bench' } }),
    LOG_LEVEL: 'warn',
  };
  // SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"): extra node flags for the server process.
  const nodeArgs = (process.env.SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, SERVER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${http}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited:\n${out}`);
    try {
      if ((await fetch(url + '/readyz')).status === 200) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`server not ready:\n${out}`);
    await sleep(50);
  }
  const cpu = () => {
    try {
      // /proc/<pid>/stat: utime and stime in clock ticks (fields 14, 15)
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      return NaN;
    }
  };
  return {
    url,
    workerAddr: `127.0.0.1:${w}`,
    producerAddr: `127.0.0.1:${p}`,
    cpu,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function child(role, cfg) {
  const execArgv = cfg.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${cfg.cpuProf}`, `--cpu-prof-name=${cfg.mode}-${role}.cpuprofile`] : [];
  const c = fork(fileURLToPath(import.meta.url), ['--role', role], { execArgv, env: { ...process.env, SDK_BENCH_CFG: JSON.stringify(cfg) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const inbox = [];
  const waiters = [];
  c.on('message', (m) => {
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else inbox.push(m);
  });
  const failed = new Promise((_, reject) => c.once('exit', (code) => code !== 0 && reject(new Error(`${role} process exited with ${code}`))));
  failed.catch(() => undefined);
  return {
    send: (m) => c.send(m),
    wait: (type) => {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
      return Promise.race([new Promise((resolve) => waiters.push({ type, resolve })), failed]);
    },
    exited: new Promise((r) => c.once('exit', r)),
  };
}

async function runMode(mode, o) {
  const server = await startServer(o.fsync);
  const cmd = `sdk.bench.${mode}.${Date.now()}`;
  const cfg = { mode, url: server.url, workerAddr: server.workerAddr, producerAddr: server.producerAddr, producers: o.producers, inflight: o.inflight, concurrency: o.concurrency, leaseSeconds: o.leaseSeconds, commands: [`${cmd}.warmup`, cmd], cpuProf: o.cpuProf };
  const worker = child('worker', cfg);
  const producer = child('producer', cfg);
  try {
    await Promise.all([worker.wait('ready'), producer.wait('ready')]);
    const round = async (command, n, rate = 0) => {
      worker.send({ type: 'expect', n });
      producer.send({ type: 'go', command, n, rate });
      const [p, w] = await Promise.all([producer.wait('done'), worker.wait('done')]);
      return { p, w };
    };
    const cpuOf = (stats) => stats.cpuUserS + stats.cpuSysS;
    let before = { p: 0, w: 0 };
    if (o.warmup > 0) {
      const warm = await round(`${cmd}.warmup`, o.warmup);
      before = { p: cpuOf(warm.p.stats), w: cpuOf(warm.w.stats) };
    }
    const cpu0 = server.cpu();
    const { p, w } = await round(cmd, o.n, o.rate);
    const serverCpuS = server.cpu() - cpu0;
    const cycleS = (w.lastCompletedAt - p.firstSubmitAt) / 1000;
    const submitS = (p.lastSubmitAt - p.firstSubmitAt) / 1000;
    worker.send({ type: 'expect', stop: true });
    producer.send({ type: 'go', stop: true });
    await Promise.all([worker.exited, producer.exited]);
    return {
      sdk: mode,
      n: o.n,
      producers: o.producers,
      inflight: o.inflight,
      concurrency: o.concurrency,
      rate: o.rate || null,
      fsync: o.fsync,
      cycleTasksPerS: r1(o.n / cycleS),
      submitTasksPerS: r1(o.n / submitS),
      e2eLatencyMs: Object.fromEntries(Object.entries(w.latencyMs).map(([k, v]) => [k, r1(v)])),
      submitLatencyMs: Object.fromEntries(Object.entries(p.submitLatencyMs).map(([k, v]) => [k, r1(v)])),
      cpuS: { server: r1(serverCpuS), producer: r1(p.stats.cpuUserS + p.stats.cpuSysS), worker: r1(w.stats.cpuUserS + w.stats.cpuSysS) },
      // CPU of the timed round only (after the warm-up), per task: comparable across code changes.
      cpuUsPerTask: { server: r1((serverCpuS * 1e6) / o.n), producer: r1(((cpuOf(p.stats) - before.p) * 1e6) / o.n), worker: r1(((cpuOf(w.stats) - before.w) * 1e6) / o.n) },
      workerErrors: w.errors,
    };
  } finally {
    await server.stop();
  }
}

const o = parseArgs(process.argv.slice(2));
if (o.role) {
  const cfg = JSON.parse(process.env.SDK_BENCH_CFG);
  await (o.role === 'producer' ? producerRole(cfg) : workerRole(cfg));
} else {
  for (const f of [SERVER, fileURLToPath(PRODUCER_SDK), fileURLToPath(WORKER_SDK)]) {
    if (!existsSync(f)) {
      console.error(`${f} is missing: build first (bash scripts/pnpm.sh exec turbo run build)`);
      process.exit(2);
    }
  }
  const modes = o.mode === 'both' ? ['grpc', 'http'] : [o.mode];
  for (const mode of modes) {
    const r = await runMode(mode, o);
    if (o.json) console.log(JSON.stringify(r));
    else {
      const l = r.e2eLatencyMs;
      const s = r.submitLatencyMs;
      console.log(
        `${mode.padEnd(4)}  n=${r.n} producers=${r.producers} inflight=${r.inflight} concurrency=${r.concurrency}${r.rate ? ` rate=${r.rate}/s` : ''}  ` +
          `cycle ${r.cycleTasksPerS} tasks/s, submit ${r.submitTasksPerS} tasks/s  ` +
          `e2e p50/p90/p99/max ${l.p50}/${l.p90}/${l.p99}/${l.max} ms  submit p50/p99 ${s.p50}/${s.p99} ms  ` +
          `cpu s server/producer/worker ${r.cpuS.server}/${r.cpuS.producer}/${r.cpuS.worker}  ` +
          `timed round cpu µs/task server/producer/worker ${r.cpuUsPerTask.server}/${r.cpuUsPerTask.producer}/${r.cpuUsPerTask.worker}` +
          (r.workerErrors.length ? `  worker errors: ${r.workerErrors.join('; ')}` : ''),
      );
    }
  }
}
