#!/usr/bin/env node
// Server CPU per HTTP request, by route (not part of the test suite):
//
//   node bench/http-request-cost.mjs [--requests 20000] [--concurrency 32] [--fsync false]
//                                    [--main <server main.js>] [--compare <other main.js>] [--rounds 4]
//
// Starts apps/server/dist/main.js (or --main; temp data dir, static tokens), warms each route up,
// then sends `--requests` requests per route with `--concurrency` in flight (undici keep-alive,
// one process) and divides the server's CPU time (/proc/<pid>/stat, all threads) by the request
// count:
//   GET  /healthz                      Fastify + Nest routing, no guard, no storage
//   POST /v1/codeq/tasks/claim (empty) + auth guard, body parsing, a claim that finds nothing (204)
//   POST /v1/codeq/tasks               + a create: validation, index, group commit (202 + task JSON)
//   POST /v1/codeq/tasks/claim         + a lease (the tasks created above) and its commit
//   POST /v1/codeq/tasks/:id/result    + a result and its commit
// CPU time is less sensitive to other load than throughput, but a busy box still inflates it
// (caches, frequency): compare runs taken in the same window.
//
// --compare <main.js> is a paired comparison of two builds (e.g. a copy of apps/server/dist kept
// from before a change): both servers run at once and every route is measured in `--rounds`
// alternating slices (A, B, B, A, ...), so both see the same background load; the table has the
// median over rounds of each build's µs per request and the median of the per-round ratios B / A
// (medians: a burst of other load on the box spoils a round, not the result). An A/A run (one build
// twice) measured the second server 5–19 % cheaper on this box: run both orders and take the
// geometric mean of the two ratios.
//
// SERVER_NODE_ARGS (env) are extra node flags for the server(s), e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"
// (summarise with bench/profile-summary.mjs).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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
const MAIN = arg('main', join(root, 'apps/server/dist/main.js'));
const COMPARE = arg('compare', null);
const ROUNDS = COMPARE ? Number(arg('rounds', 10)) : 1;
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
const headers = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };

async function startServer(main) {
  const dir = mkdtempSync(join(tmpdir(), 'codeq-reqcost-'));
  const port = await freePort();
  const child = spawn(process.execPath, [...(process.env.SERVER_NODE_ARGS || '').split(/\s+/).filter(Boolean), main], {
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
    if (i > 300 || child.exitCode !== null) throw new Error(`server ${main} did not start (build it first)`);
    await sleep(50);
  }
  const pool = new undici.Pool(url, { connections: CONC, pipelining: 1 });
  // CPU seconds of all the server's threads: the scheduler's run time (ns) where readable, else
  // utime + stime in clock ticks (10 ms steps).
  const cpuS = () => {
    try {
      let ns = 0;
      for (const t of readdirSync(`/proc/${child.pid}/task`)) {
        try {
          ns += Number(readFileSync(`/proc/${child.pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
        } catch {
          /* thread ended */
        }
      }
      return ns / 1e9;
    } catch {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    }
  };
  async function call(method, path, body) {
    const r = await pool.request({ method, path, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.body.text();
    if (r.statusCode >= 300) throw new Error(`${method} ${path} -> ${r.statusCode} ${text.slice(0, 200)}`);
    return text ? JSON.parse(text) : null;
  }
  /** Runs `n` calls of make(i) with CONC in flight; returns server CPU seconds and wall ms. */
  async function measure(n, make) {
    let next = 0;
    const c0 = cpuS();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONC }, async () => {
        while (next < n) await make(next++);
      }),
    );
    return { cpu: cpuS() - c0, wall: performance.now() - t0, n };
  }
  return {
    main,
    call,
    measure,
    ids: [],
    cmd: `cost_${Date.now()}_${port}`,
    async stop() {
      await pool.close();
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const pad = 'x'.repeat(150);
/** The routes, in order; each measures `n` requests on server `s`. */
const routes = [
  ['GET /healthz', (s, n) => s.measure(n, () => s.call('GET', '/healthz'))],
  ['POST claim (empty, 204)', (s, n) => s.measure(n, () => s.call('POST', '/v1/codeq/tasks/claim', { commands: ['nothing_here'], leaseSeconds: 30 }))],
  ['POST create (202)', (s, n) => s.measure(n, (i) => s.call('POST', '/v1/codeq/tasks', { command: s.cmd, payload: { i, pad }, priority: 0 }))],
  [
    'POST claim (200, leases)',
    (s, n) =>
      s.measure(n, async () => {
        const t = await s.call('POST', '/v1/codeq/tasks/claim', { commands: [s.cmd], leaseSeconds: 30 });
        s.ids.push(t.id);
      }),
  ],
  ['POST result (200)', (s, n) => s.measure(n, () => s.call('POST', `/v1/codeq/tasks/${s.ids.shift()}/result`, { status: 'COMPLETED', result: { ok: true } }))],
];

const servers = [];
const totals = new Map(); // route -> per server {cpu, wall, n}
const perRound = new Map(); // route -> [[µs A, µs B], ...]
try {
  for (const main of COMPARE ? [MAIN, COMPARE] : [MAIN]) servers.push(await startServer(main));
  const warm = Math.min(5000, REQUESTS);
  // Warm-up: every route once on every server (create → claim → result drains its tasks).
  for (const s of servers) for (const [, run] of routes) await run(s, warm);
  const slice = Math.ceil(REQUESTS / ROUNDS);
  // Per round: every route in order, alternating servers within the route (so create, claim and
  // result each see both builds in the same few seconds).
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, run] of routes) {
      const order = r % 2 ? [...servers].reverse() : servers;
      if (!perRound.has(name)) perRound.set(name, []);
      const row = [];
      perRound.get(name).push(row);
      for (const s of order) {
        const m = await run(s, slice);
        row[servers.indexOf(s)] = (m.cpu * 1e6) / m.n;
        if (!totals.has(name)) totals.set(name, new Map());
        const t = totals.get(name).get(s) ?? { cpu: 0, wall: 0, n: 0 };
        totals.get(name).set(s, { cpu: t.cpu + m.cpu, wall: t.wall + m.wall, n: t.n + m.n });
      }
    }
  }
} finally {
  for (const s of servers) await s.stop();
}
const us = (t) => (t.cpu * 1e6) / t.n;
const rps = (t) => (t.n * 1000) / t.wall;
console.log(`server CPU per HTTP request (${REQUESTS} requests per route${COMPARE ? ` per build, ${ROUNDS} alternating rounds` : ''}, ${CONC} in flight, fsyncOnCommit=${FSYNC}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
if (!COMPARE) {
  console.log('| route | server µs CPU / request | requests/s (one client process) |\n|---|---:|---:|');
  for (const [name, m] of totals) {
    const t = m.get(servers[0]);
    console.log(`| ${name} | ${us(t).toFixed(0)} | ${rps(t).toFixed(0)} |`);
  }
} else {
  console.log(`A = ${MAIN}\nB = ${COMPARE}`);
  const median = (xs) => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  console.log('| route | A µs CPU / request | B µs CPU / request | B / A (median of rounds, min–max) |\n|---|---:|---:|---:|');
  for (const [name, rows] of perRound) {
    const ratios = rows.map(([a, b]) => b / a);
    console.log(`| ${name} | ${median(rows.map((x) => x[0])).toFixed(0)} | ${median(rows.map((x) => x[1])).toFixed(0)} | ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}) |`);
  }
}
