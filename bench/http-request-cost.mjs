#!/usr/bin/env node
// Server CPU per HTTP request, by route (not part of the test suite):
//
//   node bench/http-request-cost.mjs [--requests 20000] [--concurrency 32] [--fsync false] [--main <server main.js>]
//
// --main runs another build of the server (e.g. a copy of apps/server/dist kept from before a
// change), so before/after builds can be alternated in one window.
// Starts apps/server/dist/main.js (temp data dir, static tokens), warms each route up, then sends
// `--requests` requests per route with `--concurrency` in flight (undici keep-alive, one process)
// and divides the server's CPU time (/proc/<pid>/stat, all threads) by the request count:
//   GET  /healthz                      Fastify + Nest routing, no guard, no storage
//   POST /v1/codeq/tasks/claim (empty) + auth guard, body parsing, a claim that finds nothing (204)
//   POST /v1/codeq/tasks               + a create: validation, index, group commit (202 + task JSON)
//   POST /v1/codeq/tasks/claim         + a lease (the tasks created above) and its commit
//   POST /v1/codeq/tasks/:id/result    + a result and its commit
// CPU time is less sensitive to other load than throughput, but a busy box still inflates it
// (caches, frequency): compare runs taken in the same window.
import { spawn } from 'node:child_process';
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
const REQUESTS = Number(arg('requests', 20000));
const CONC = Number(arg('concurrency', 32));
const FSYNC = String(arg('fsync', 'false')) === 'true';
const MAIN = arg('main', null);
const TOKEN = 'bench-token';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });

const req = createRequire(join(root, 'apps/server/package.json'));
const undici = await import(pathToFileURL(req.resolve('undici')).href);

const dir = mkdtempSync(join(tmpdir(), 'codeq-reqcost-'));
const port = await freePort();
const child = spawn(process.execPath, [MAIN ?? join(root, 'apps/server/dist/main.js')], {
  env: {
    PATH: process.env.PATH,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    PERSISTENCE_PROVIDER: 'sqlite',
    PERSISTENCE_CONFIG: JSON.stringify({ path: join(dir, 'data'), fsyncOnCommit: FSYNC }),
    PRODUCER_AUTH_PROVIDER: 'static',
    PRODUCER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'p', raw: { role: 'ADMIN', tid: 'bench' } }),
    WORKER_AUTH_PROVIDER: 'static',
    WORKER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'w', scopes: ['codeq:claim', 'codeq:result', 'codeq:heartbeat'], eventTypes: ['*'], raw: { tid: 'bench' } }),
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
  if (i > 300 || child.exitCode !== null) throw new Error('server did not start (build it first)');
  await sleep(50);
}
const cpuS = () => {
  const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

const pool = new undici.Pool(url, { connections: CONC, pipelining: 1 });
const headers = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };
async function call(method, path, body) {
  const r = await pool.request({ method, path, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.body.text();
  if (r.statusCode >= 300) throw new Error(`${method} ${path} -> ${r.statusCode} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}
/** Runs `n` calls of make(i) with CONC in flight; returns server µs of CPU per call. */
async function measure(n, make) {
  let next = 0;
  const c0 = cpuS();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < n) await make(next++);
    }),
  );
  const wall = performance.now() - t0;
  return { usPerReq: ((cpuS() - c0) * 1e6) / n, reqPerSec: (n * 1000) / wall };
}

const pad = 'x'.repeat(150);
const out = [];
try {
  const warm = Math.min(5000, REQUESTS);
  const cmd = `cost_${Date.now()}`;
  const steps = [
    ['GET /healthz', (n) => measure(n, () => call('GET', '/healthz'))],
    ['POST claim (empty, 204)', (n) => measure(n, () => call('POST', '/v1/codeq/tasks/claim', { commands: ['nothing_here'], leaseSeconds: 30 }))],
  ];
  for (const [name, run] of steps) {
    await run(warm);
    out.push([name, await run(REQUESTS)]);
  }
  // create → claim → result on real tasks (a warm-up cycle first)
  const ids = [];
  for (const [label, n] of [['warm', warm], ['measure', REQUESTS]]) {
    ids.length = 0;
    const c = await measure(n, (i) => call('POST', '/v1/codeq/tasks', { command: cmd, payload: { i, pad }, priority: 0 }));
    const cl = await measure(n, async () => {
      const t = await call('POST', '/v1/codeq/tasks/claim', { commands: [cmd], leaseSeconds: 30 });
      ids.push(t.id);
    });
    let k = 0;
    const r = await measure(n, () => call('POST', `/v1/codeq/tasks/${ids[k++]}/result`, { status: 'COMPLETED', result: { ok: true } }));
    if (label === 'measure') out.push(['POST create (202)', c], ['POST claim (200, leases)', cl], ['POST result (200)', r]);
  }
} finally {
  await pool.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
console.log(`server CPU per HTTP request (${REQUESTS} requests per route, ${CONC} in flight, fsyncOnCommit=${FSYNC}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
console.log('| route | server µs CPU / request | requests/s (one client process) |\n|---|---:|---:|');
for (const [name, m] of out) console.log(`| ${name} | ${m.usPerReq.toFixed(0)} | ${m.reqPerSec.toFixed(0)} |`);
