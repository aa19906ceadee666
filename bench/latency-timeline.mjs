#!/usr/bin/env node
// Where the latency of a fixed-rate HTTP run comes from, over time (not part of the test suite):
//
//   node bench/latency-timeline.mjs [--rate 1000] [--seconds 8] [--runs 2] [--url http://127.0.0.1:8080 --token T] [--main <server main.js>]
//
// The peer harness's latency scenario, replayed and bucketed by creation time: a fresh producer
// process creates at `--rate` (POST /tasks, 64 keep-alive connections), a fresh worker process
// runs 64 slots of claim (waitSeconds 5) → result, and per half second of creation time the p50
// and the worst create→completed latency are printed. Without --url a server is started (temp
// data dir, fsyncOnCommit false) and kept for all `--runs`, so run 1 shows a cold server and the
// later runs a warm one with cold clients.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const args = process.argv.slice(2);
const arg = (n, d) => {
  const i = args.indexOf(`--${n}`);
  return i < 0 ? d : args[i + 1];
};
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const q = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
};

async function client(url, token, connections) {
  const req = createRequire(join(root, 'apps/server/package.json'));
  const { Pool } = await import(pathToFileURL(req.resolve('undici')).href);
  const pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 60_000, bodyTimeout: 60_000 });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
  return {
    pool,
    async post(path, body) {
      const r = await pool.request({ method: 'POST', path, headers, body: JSON.stringify(body) });
      const text = await r.body.text();
      if (r.statusCode >= 300) throw new Error(`${path} -> ${r.statusCode} ${text.slice(0, 200)}`);
      return r.statusCode === 204 || !text ? null : JSON.parse(text);
    },
  };
}

// ---- child roles ----------------------------------------------------------------------------
if (process.env.LT_ROLE) {
  const { url, token, cmd, rate, seconds } = JSON.parse(process.env.LT_ARGS);
  const n = Math.round(rate * seconds);
  if (process.env.LT_ROLE === 'worker') {
    const c = await client(url, token, 66);
    const lat = [];
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const t = await c.post('/v1/codeq/tasks/claim', { commands: [cmd], leaseSeconds: 30, waitSeconds: 5 });
        if (!t) continue;
        const tc = now();
        const p = typeof t.payload === 'string' ? JSON.parse(t.payload) : t.payload;
        await c.post(`/v1/codeq/tasks/${t.id}/result`, { status: 'COMPLETED', result: { ok: true } });
        lat.push([p.t0, now() - p.t0, p.seq, tc - p.t0]);
        if (lat.length >= n) stop = true;
      }
    };
    process.send({ ready: true });
    await Promise.all(Array.from({ length: 64 }, loop));
    process.send({ lat });
    await c.pool.destroy();
    process.exit(0);
  } else {
    const c = await client(url, token, 64);
    const pad = 'x'.repeat(150);
    const start = now();
    let sent = 0;
    const inflight = new Set();
    const acked = new Array(n);
    while (sent < n) {
      const due = Math.min(n, Math.floor(((now() - start) * rate) / 1000) + 1);
      while (sent < due) {
        const t0 = now();
        const seq = sent++;
        const p = c.post('/v1/codeq/tasks', { command: cmd, payload: { seq, t0, kind: 'bench', pad }, priority: 0 }).then(() => (acked[seq] = now() - t0));
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      await sleep(1);
    }
    await Promise.all(inflight);
    process.send({ acked });
    await c.pool.close();
    process.exit(0);
  }
}

// ---- orchestrator ---------------------------------------------------------------------------
const rate = Number(arg('rate', 1000));
const seconds = Number(arg('seconds', 8));
const runs = Number(arg('runs', 2));
let url = arg('url', null);
let token = arg('token', 'bench-token');
let stopServer = async () => {};
let serverPid = null;
// CPU share of a process over the last interval, from /proc (Linux only; null elsewhere)
const cpuTicks = (pid) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
};
if (!url) {
  const dir = mkdtempSync(join(tmpdir(), 'codeq-timeline-'));
  const port = await new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const child = spawn(process.execPath, [arg('main', join(root, 'apps/server/dist/main.js'))], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      PERSISTENCE_PROVIDER: 'sqlite',
      PERSISTENCE_CONFIG: JSON.stringify({ path: join(dir, 'data'), fsyncOnCommit: false }),
      PRODUCER_AUTH_PROVIDER: 'static',
      PRODUCER_AUTH_CONFIG: JSON.stringify({ token, subject: 'p', raw: { role: 'ADMIN', tid: 'bench' } }),
      WORKER_AUTH_PROVIDER: 'static',
      WORKER_AUTH_CONFIG: JSON.stringify({ token, subject: 'w', scopes: ['codeq:claim', 'codeq:result', 'codeq:heartbeat'], eventTypes: ['*'], raw: { tid: 'bench' } }),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  url = `http://127.0.0.1:${port}`;
  serverPid = child.pid;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      /* not yet */
    }
    if (i > 300 || child.exitCode !== null) throw new Error('server did not start (build it first)');
    await sleep(50);
  }
  stopServer = async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  };
}
const self = fileURLToPath(import.meta.url);
// Killed (Ctrl-C, `timeout`): take the server and the client processes down too, so no orphan
// keeps using the CPU of the next measurement.
const children = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    for (const c of children) c.kill('SIGKILL');
    if (serverPid) {
      try {
        process.kill(serverPid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    process.exit(130);
  });
}
try {
  for (let run = 1; run <= runs; run++) {
    const env = { ...process.env, LT_ARGS: JSON.stringify({ url, token, cmd: `timeline_${Date.now()}_${run}`, rate, seconds }) };
    const worker = fork(self, [], { env: { ...env, LT_ROLE: 'worker' } });
    children.add(worker);
    worker.once('exit', () => children.delete(worker));
    // a client that dies (e.g. an HTTP error) fails the run instead of leaving it waiting
    const died = (name, child) => new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before reporting`))));
    const workerDied = died('worker', worker);
    workerDied.catch(() => {});
    const result = Promise.race([new Promise((resolve) => worker.on('message', (m) => m.lat && resolve(m.lat))), workerDied]);
    await Promise.race([new Promise((resolve) => worker.on('message', (m) => m.ready && resolve())), workerDied]);
    const producer = fork(self, [], { env: { ...env, LT_ROLE: 'producer' } });
    children.add(producer);
    producer.once('exit', () => children.delete(producer));
    const producerDied = died('producer', producer);
    producerDied.catch(() => {});
    const acked = Promise.race([new Promise((resolve) => producer.on('message', (m) => m.acked && resolve(m.acked))), producerDied]);
    // CPU % of server / worker / producer per 250 ms (clock ticks are 10 ms)
    const pids = { server: serverPid, worker: worker.pid, producer: producer.pid };
    const cpu = [];
    let last = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, p && cpuTicks(p)]));
    const sampler = setInterval(() => {
      const cur = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, p && cpuTicks(p)]));
      cpu.push(Object.keys(pids).map((k) => (cur[k] != null && last[k] != null ? (cur[k] - last[k]) * 4 : null)));
      last = cur;
    }, 250);
    const lat = await result;
    const ack = await acked;
    clearInterval(sampler);
    await new Promise((r) => (producer.exitCode !== null ? r() : producer.once('exit', r)));
    const t0 = Math.min(...lat.map((x) => x[0]));
    const buckets = new Map();
    for (const [t, l] of lat) {
      const k = Math.floor((t - t0) / 500);
      if (!buckets.has(k)) buckets.set(k, []);
      buckets.get(k).push(l);
    }
    // stages per half second: create acknowledged, claimed by the worker, result acknowledged
    const stages = new Map();
    for (const [t, l, seq, tc] of lat) {
      const k = Math.floor((t - t0) / 500);
      if (!stages.has(k)) stages.set(k, { ack: [], claim: [] });
      stages.get(k).ack.push(ack[seq]);
      stages.get(k).claim.push(tc);
    }
    const all = lat.map((x) => x[1]);
    console.log(`run ${run}: ${lat.length} tasks at ${rate}/s, load ${loadavg()[0].toFixed(2)}: p50 ${q(all, 0.5).toFixed(1)} ms, p90 ${q(all, 0.9).toFixed(1)}, p99 ${q(all, 0.99).toFixed(1)}, max ${Math.max(...all).toFixed(1)}`);
    console.log('  by half second of creation time (p50 / max ms): ' + [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([k, a]) => `${k / 2}s ${q(a, 0.5).toFixed(1)}/${Math.max(...a).toFixed(0)}`).join(', '));
    console.log('  CPU % per 250 ms (server/worker/producer): ' + cpu.slice(0, 16).map((r) => r.map((x) => (x == null ? '-' : x)).join('/')).join(' '));
    console.log('  stages, p50 ms (create acked / claimed / completed): ' + [...stages.entries()].sort((a, b) => a[0] - b[0]).map(([k, s]) => `${k / 2}s ${q(s.ack, 0.5).toFixed(1)}/${q(s.claim, 0.5).toFixed(1)}/${q(buckets.get(k), 0.5).toFixed(1)}`).join(', '));
  }
} finally {
  await stopServer();
}
