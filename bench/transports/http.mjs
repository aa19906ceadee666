// HTTP transport for the bench: producer = one POST per task, worker = claim + result.
//
//   create: POST {base}/v1/codeq/tasks              {command, payload, priority:0}              -> 2xx (our server: 202)
//   claim:  POST {base}/v1/codeq/tasks/claim        {commands:[command], leaseSeconds, waitSeconds}
//                                                   -> 200 task JSON {id, payload:"<JSON text>", …} or 204 (nothing within waitSeconds)
//   result: POST {base}/v1/codeq/tasks/{id}/result  {status:"COMPLETED", result:{ok:true}}    -> 2xx (200)
//   auth:   Authorization: Bearer <token>
//
// Two interchangeable HTTP/1.1 keep-alive clients, both without an install of our own:
//   'undici' - undici.Pool resolved from apps/server's node_modules (what the peer bench's codeq adapter uses)
//   'http'   - node:http with a keep-alive Agent
// 'auto' (default) picks undici when it resolves, else node:http.
//
// Transport interface (see transports/index.mjs): preflight(cfg), describe(cfg),
// createProducer(cfg, {inflight}) -> {create(payload), close()},
// createWorker(cfg, {concurrency, onComplete, onError, isDone}) -> {start(), close(), stats()}.
import http from 'node:http';
import { createRequire } from 'node:module';
import { setMaxListeners } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sleep, assertLoopback } from '../lib/common.mjs';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

let undiciPromise;
/** undici from apps/server's dependencies, or null when it does not resolve. */
export function loadUndici() {
  undiciPromise ??= (async () => {
    try {
      const req = createRequire(`${repoRoot}apps/server/package.json`);
      const entry = req.resolve('undici');
      const mod = await import(pathToFileURL(entry).href);
      let version = 'unknown';
      try {
        version = req('undici/package.json').version;
      } catch {
        /* exports may hide package.json */
      }
      return { mod: mod.default ?? mod, version };
    } catch {
      return null;
    }
  })();
  return undiciPromise;
}

async function pickClient(kind) {
  if (kind === 'http') return { kind: 'http', version: process.version };
  const u = await loadUndici();
  if (u) return { kind: 'undici', version: u.version, mod: u.mod };
  if (kind === 'undici') throw new Error('undici does not resolve from apps/server (run the repo install first, or use --client http)');
  return { kind: 'http', version: process.version };
}

class HttpStatusError extends Error {
  constructor(what, status, text) {
    super(`${what} -> HTTP ${status}: ${String(text).slice(0, 300)}`);
    this.status = status;
  }
}

/** A keep-alive client with `connections` sockets: post(path, body, signal) -> {status, text}. */
async function makeClient(cfg, connections) {
  const u = assertLoopback(cfg.url, 'url');
  const base = u.pathname.replace(/\/+$/, '');
  const headers = { 'content-type': 'application/json' };
  if (cfg.token) headers.authorization = `Bearer ${cfg.token}`;
  const timeoutMs = ((cfg.waitSeconds ?? 5) + 30) * 1000;
  const c = await pickClient(cfg.client || 'auto');

  if (c.kind === 'undici') {
    const pool = new c.mod.Pool(u.origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      connectTimeout: 5_000,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    return {
      client: `undici ${c.version} Pool(connections=${connections}, pipelining=1)`,
      async post(path, body, signal) {
        const res = await pool.request({ method: 'POST', path: base + path, headers, body: JSON.stringify(body), signal });
        const text = await res.body.text();
        return { status: res.statusCode, text };
      },
      close: () => pool.close(),
      destroy: () => pool.destroy(),
    };
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, scheduling: 'fifo' });
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 80);
  return {
    client: `node:http ${process.version} Agent(keepAlive, maxSockets=${connections})`,
    post(path, body, signal) {
      return new Promise((resolve, reject) => {
        const data = JSON.stringify(body);
        const req = http.request(
          { agent, host, port, method: 'POST', path: base + path, headers: { ...headers, 'content-length': Buffer.byteLength(data) }, signal },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (ch) => (text += ch));
            res.on('end', () => resolve({ status: res.statusCode, text }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`request timeout after ${timeoutMs} ms`)));
        req.end(data);
      });
    },
    close: async () => agent.destroy(),
    destroy: async () => agent.destroy(),
  };
}

const isAbort = (e) => e?.name === 'AbortError' || e?.code === 'ABORT_ERR' || e?.code === 'UND_ERR_ABORTED';

function countStatus(map, status) {
  map[status] = (map[status] || 0) + 1;
}

export const name = 'http';

export async function describe(cfg) {
  const c = await pickClient(cfg.client || 'auto');
  return { transport: 'http', client: c.kind, clientVersion: c.version };
}

/** Side-effect-free probe: claim from a command nobody uses, without waiting. Throws a readable error. */
export async function preflight(cfg) {
  const c = await makeClient(cfg, 1);
  const what = 'preflight POST /v1/codeq/tasks/claim';
  try {
    const r = await c.post('/v1/codeq/tasks/claim', { commands: [`bench_preflight_${process.pid}_${Date.now()}`], leaseSeconds: 1, waitSeconds: 0 });
    if (r.status === 204) return;
    if (r.status === 401 || r.status === 403) throw new HttpStatusError(`${what} (token rejected?)`, r.status, r.text);
    if (r.status === 404) throw new HttpStatusError(`${what} (endpoint missing; is the URL the server's base URL?)`, r.status, r.text);
    throw new HttpStatusError(`${what} (expected 204 for an unused command)`, r.status, r.text);
  } catch (e) {
    const code = e.code || e.cause?.code;
    if (code) throw new Error(`${what}: no server reachable at ${cfg.url} (${code})`);
    throw e;
  } finally {
    await c.destroy().catch(() => {});
  }
}

export async function createProducer(cfg, { inflight = 64 } = {}) {
  const c = await makeClient(cfg, inflight);
  const statuses = {};
  const body = { command: cfg.command, payload: null, priority: 0 };
  return {
    client: c.client,
    async create(payload) {
      body.payload = payload; // stringified synchronously inside post()
      const r = await c.post('/v1/codeq/tasks', body);
      countStatus(statuses, r.status);
      if (r.status < 200 || r.status > 299) throw new HttpStatusError('POST /v1/codeq/tasks', r.status, r.text);
    },
    stats: () => ({ createStatuses: statuses }),
    close: () => c.close(),
  };
}

export async function createWorker(cfg, { concurrency, onComplete, onError, isDone }) {
  const c = await makeClient(cfg, concurrency + 2);
  const ac = new AbortController();
  setMaxListeners(concurrency * 4 + 16, ac.signal);
  const claimBody = { commands: [cfg.command], leaseSeconds: cfg.leaseSeconds ?? 30, waitSeconds: cfg.waitSeconds ?? 5 };
  const resultBody = JSON.parse('{"status":"COMPLETED","result":{"ok":true}}');
  const st = { claimStatuses: {}, resultStatuses: {}, claims: 0, empty: 0, payloadNotString: 0, wrongCommand: 0, firstShapeIssue: undefined };
  const shape = (msg) => (st.firstShapeIssue ??= msg);
  let stopping = false;
  const loops = [];

  const loop = async () => {
    while (!stopping && !isDone()) {
      let r;
      try {
        r = await c.post('/v1/codeq/tasks/claim', claimBody, ac.signal);
      } catch (e) {
        if (stopping || isAbort(e)) return;
        onError(e);
        await sleep(200);
        continue;
      }
      countStatus(st.claimStatuses, r.status);
      if (r.status === 204) {
        st.empty++;
        if (!claimBody.waitSeconds) await sleep(50);
        continue;
      }
      if (r.status !== 200) {
        onError(new HttpStatusError('POST /v1/codeq/tasks/claim', r.status, r.text));
        await sleep(200);
        continue;
      }
      st.claims++;
      let task, payload;
      try {
        task = JSON.parse(r.text);
        if (!task || typeof task.id !== 'string') throw new Error(`claim 200 without a string "id": ${r.text.slice(0, 200)}`);
        if (task.command !== undefined && task.command !== cfg.command) {
          st.wrongCommand++;
          shape(`claim returned command ${JSON.stringify(task.command)}, asked for ${cfg.command}`);
        }
        payload = task.payload;
        if (typeof payload === 'string') payload = JSON.parse(payload);
        else {
          st.payloadNotString++;
          shape(`claim returned payload as ${typeof payload}, expected a JSON string`);
        }
        if (!payload || typeof payload.seq !== 'number') throw new Error(`claimed task payload has no numeric "seq": ${String(r.text).slice(0, 200)}`);
      } catch (e) {
        onError(e);
        continue;
      }
      // no-op handler, then report the result; the task counts as completed once that POST returned 2xx
      try {
        const rr = await c.post(`/v1/codeq/tasks/${encodeURIComponent(task.id)}/result`, resultBody);
        countStatus(st.resultStatuses, rr.status);
        if (rr.status < 200 || rr.status > 299) throw new HttpStatusError(`POST /v1/codeq/tasks/${task.id}/result`, rr.status, rr.text);
        onComplete(payload);
      } catch (e) {
        if (stopping && isAbort(e)) return;
        onError(e);
      }
    }
  };

  return {
    client: c.client,
    async start() {
      for (let i = 0; i < concurrency; i++) loops.push(loop());
    },
    stats: () => st,
    async close() {
      stopping = true;
      ac.abort(); // ends the long-polling claims
      await Promise.race([Promise.all(loops), sleep(5000)]);
      await c.destroy().catch(() => {});
    },
  };
}
