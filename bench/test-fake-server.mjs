#!/usr/bin/env node
// MECHANICS CHECK FOR THE BENCH ONLY — this is NOT codeQ and measures nothing about codeQ.
// A tiny in-memory queue that implements just the routes http-bench.mjs uses, so the bench's
// own machinery (processes, IPC, bitmap, timing, reporting) can be tested without the server:
//
//   GET  /healthz                          -> 200
//   POST /v1/codeq/tasks                   {command, payload, priority} -> 202 task JSON (payload as a JSON string)
//   POST /v1/codeq/tasks/claim             {commands, leaseSeconds, waitSeconds} -> 200 task | 204 after waitSeconds
//   POST /v1/codeq/tasks/:id/result        {status, result} -> 200 | 404 | 409
//
// usage: node bench/test-fake-server.mjs [--port 0] [--token bench-token] [--dup-every K]
// (--dup-every K re-delivers every K-th completed task once, to check duplicate accounting.)
// Prints "listening http://127.0.0.1:PORT" on stdout. Binds 127.0.0.1 only. No persistence.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: { port: { type: 'string', default: process.env.PORT || '0' }, token: { type: 'string', default: 'bench-token' }, 'dup-every': { type: 'string', default: '0' } },
});
const DUP_EVERY = Number(a['dup-every']);
const pending = new Map(); // command -> array queue of tasks (head index for O(1) shift)
const waiters = new Map(); // command -> Set of {res, timer, commands}
const tasks = new Map(); // id -> task
let completedCount = 0;

const qOf = (cmd) => {
  let q = pending.get(cmd);
  if (!q) pending.set(cmd, (q = { items: [], head: 0 }));
  return q;
};
function send(res, status, obj) {
  const body = obj === undefined ? '' : JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
const view = (t) => ({ id: t.id, command: t.command, payload: t.payload, priority: t.priority, status: t.status, attempts: t.attempts, createdAt: t.createdAt });

function lease(t, leaseSeconds) {
  t.status = 'IN_PROGRESS';
  t.attempts++;
  t.leaseUntil = Date.now() + leaseSeconds * 1000;
}
function enqueue(t) {
  // hand straight to a live waiter if there is one
  const ws = waiters.get(t.command);
  if (ws) {
    for (const w of ws) {
      removeWaiter(w);
      if (w.res.destroyed || w.res.writableEnded) continue;
      lease(t, w.leaseSeconds);
      send(w.res, 200, view(t));
      return;
    }
  }
  const q = qOf(t.command);
  q.items.push(t);
}
function take(commands) {
  for (const c of commands) {
    const q = pending.get(c);
    if (q && q.head < q.items.length) {
      const t = q.items[q.head];
      q.items[q.head++] = undefined;
      if (q.head > 1024 && q.head * 2 > q.items.length) {
        q.items = q.items.slice(q.head);
        q.head = 0;
      }
      return t;
    }
  }
  return null;
}
function removeWaiter(w) {
  clearTimeout(w.timer);
  for (const c of w.commands) waiters.get(c)?.delete(w);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (s += c));
    req.on('end', () => {
      try {
        resolve(s ? JSON.parse(s) : {});
      } catch (e) {
        reject(e);
      }
    });
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  const url = req.url.split('?')[0];
  if (req.method === 'GET' && url === '/healthz') return send(res, 200, { status: 'ok', fake: true });
  if (req.headers.authorization !== `Bearer ${a.token}`) return send(res, 401, { error: 'unauthorized' });
  if (req.method !== 'POST') return send(res, 404, { error: 'not found' });
  let body;
  try {
    body = await readJson(req);
  } catch {
    return send(res, 400, { error: 'invalid json' });
  }
  if (url === '/v1/codeq/tasks') {
    if (typeof body.command !== 'string' || !body.command) return send(res, 400, { error: 'invalid command' });
    const t = { id: randomUUID(), command: body.command, payload: JSON.stringify(body.payload ?? null), priority: body.priority ?? 0, status: 'PENDING', attempts: 0, createdAt: new Date().toISOString() };
    tasks.set(t.id, t);
    const v = view(t); // snapshot before a waiter may lease it
    enqueue(t);
    return send(res, 202, v);
  }
  if (url === '/v1/codeq/tasks/claim') {
    const commands = Array.isArray(body.commands) ? body.commands : [];
    const leaseSeconds = Number(body.leaseSeconds) || 300;
    const waitSeconds = Math.min(30, Math.max(0, Number(body.waitSeconds) || 0));
    const t = take(commands);
    if (t) {
      lease(t, leaseSeconds);
      return send(res, 200, view(t));
    }
    if (!waitSeconds) return send(res, 204);
    const w = { res, commands, leaseSeconds, timer: null };
    w.timer = setTimeout(() => {
      removeWaiter(w);
      if (!res.destroyed) send(res, 204);
    }, waitSeconds * 1000);
    for (const c of commands) {
      if (!waiters.has(c)) waiters.set(c, new Set());
      waiters.get(c).add(w);
    }
    res.on('close', () => removeWaiter(w));
    return;
  }
  const m = url.match(/^\/v1\/codeq\/tasks\/([^/]+)\/result$/);
  if (m) {
    const t = tasks.get(decodeURIComponent(m[1]));
    if (!t) return send(res, 404, { error: 'task not found' });
    if (t.status !== 'IN_PROGRESS') return send(res, 409, { error: `task is ${t.status}` });
    t.status = body.status === 'COMPLETED' ? 'COMPLETED' : 'FAILED';
    completedCount++;
    if (DUP_EVERY > 0 && completedCount % DUP_EVERY === 0 && !t.redelivered) {
      t.redelivered = true;
      t.status = 'PENDING';
      enqueue(t);
    }
    return send(res, 200, { taskId: t.id, status: body.status, result: body.result ?? null, completedAt: new Date().toISOString() });
  }
  return send(res, 404, { error: 'not found' });
});
server.keepAliveTimeout = 75_000;
server.listen(Number(a.port), '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${server.address().port} (FAKE in-memory queue, bench mechanics check only)`);
});
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 1000).unref());
