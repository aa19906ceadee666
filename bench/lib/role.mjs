// Child process: one role (producer or worker) of one scenario run.
// IPC protocol: parent -> {type:'init', role, transport, cfg, …}; child -> 'ready';
// parent -> {type:'go', …}; child -> 'done' (measurements); parent -> 'close'; child exits.
// The parent kills this process by PID when the run's deadline passes; 'disconnect' also ends it.
import { loadTransport } from '../transports/index.mjs';
import { now, sleep, makePayload, summarize, processStats } from './common.mjs';

const MAX_ERRORS = 100;
let role = '?';
let handle;

const send = (m) => process.connected && process.send(m);
function fatal(err) {
  send({ type: 'error', role, message: String(err?.stack || err?.message || err) });
  setTimeout(() => process.exit(1), 100);
}

// ---------------- producer ----------------
/** Creates seq 0..n-1 keeping `inflight` creates outstanding; bounded by n, errors and deadline. */
async function runBurst({ n, inflight, deadline }) {
  let next = 0;
  let acked = 0;
  let errors = 0;
  let firstErr;
  const tFirst = now();
  const lane = async () => {
    while (next < n && errors < MAX_ERRORS && now() < deadline) {
      const i = next++;
      try {
        await handle.create(makePayload(i, now()));
        acked++;
      } catch (e) {
        errors++;
        firstErr ??= String(e?.message || e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inflight, n) }, lane));
  const tLast = now();
  return { mode: 'burst', n, sent: next, acked, errors, firstErr, tFirst, tLast, tLastSend: tLast };
}

/** Creates round(rate*seconds) tasks on a schedule (1 ms tick), at most maxInflight outstanding. */
async function runRate({ rate, seconds, maxInflight, deadline }) {
  const total = Math.round(rate * seconds);
  let sent = 0;
  let acked = 0;
  let inflight = 0;
  let errors = 0;
  let firstErr;
  let maxLagMs = 0;
  const pending = new Set();
  const tFirst = now();
  const stopAt = Math.min(deadline, tFirst + seconds * 3000 + 10_000);
  while (sent < total && errors < MAX_ERRORS && now() < stopAt) {
    const due = Math.min(total, Math.floor(((now() - tFirst) * rate) / 1000) + 1);
    if (due - sent > 1) maxLagMs = Math.max(maxLagMs, ((due - sent - 1) * 1000) / rate);
    while (sent < due && inflight < maxInflight) {
      const i = sent++;
      inflight++;
      const p = handle
        .create(makePayload(i, now()))
        .then(
          () => acked++,
          (e) => {
            errors++;
            firstErr ??= String(e?.message || e);
          },
        )
        .finally(() => {
          inflight--;
          pending.delete(p);
        });
      pending.add(p);
    }
    await sleep(1);
  }
  const tLastSend = now();
  await Promise.race([Promise.all(pending), sleep(Math.max(0, deadline - now()))]);
  const tLast = now();
  return {
    mode: 'rate',
    n: total,
    sent,
    acked,
    errors,
    firstErr,
    tFirst,
    tLastSend,
    tLast,
    achievedRate: sent / ((tLastSend - tFirst) / 1000),
    maxScheduleLagMs: maxLagMs,
  };
}

async function producer(init, transport) {
  handle = await transport.createProducer(init.cfg, { inflight: init.inflight });
  send({ type: 'ready', role, client: handle.client });
  process.on('message', async (m) => {
    if (m.type !== 'go') return;
    try {
      const r = m.mode === 'rate' ? await runRate(m) : await runBurst(m);
      send({ type: 'done', role, ...r, ...(handle.stats?.() ?? {}), ...processStats() });
    } catch (e) {
      fatal(e);
    }
  });
}

// ---------------- worker ----------------
async function worker(init, transport) {
  const expected = init.expected;
  const st = {
    seen: new Uint8Array(Math.ceil(expected / 8)), // completion bitmap by seq
    lat: new Float64Array(expected),
    uniq: 0,
    dup: 0,
    bad: 0,
    errors: 0,
    firstErr: undefined,
    tStart: 0,
    tFirstComplete: 0,
    tLast: 0,
    doneSent: false,
  };
  const finish = (partial) => {
    if (st.doneSent) return;
    st.doneSent = true;
    let latency;
    if (init.recordLatency) {
      const vals = [];
      for (let i = 0; i < expected; i++) if (st.seen[i >> 3] & (1 << (i & 7))) vals.push(st.lat[i]);
      latency = summarize(vals);
    }
    send({
      type: 'done',
      role,
      partial: !!partial,
      expected,
      uniq: st.uniq,
      dup: st.dup,
      bad: st.bad,
      errors: st.errors,
      firstErr: st.firstErr,
      tStart: st.tStart,
      tFirstComplete: st.tFirstComplete,
      tLast: st.tLast,
      latency,
      ...(handle?.stats?.() ?? {}),
      ...processStats(),
    });
  };
  const onComplete = (payload) => {
    const t = now();
    const seq = payload?.seq;
    if (!(Number.isInteger(seq) && seq >= 0 && seq < expected)) {
      st.bad++;
      return;
    }
    const byte = seq >> 3;
    const bit = 1 << (seq & 7);
    if (st.seen[byte] & bit) {
      st.dup++;
      return;
    }
    st.seen[byte] |= bit;
    st.lat[seq] = t - payload.t0;
    st.uniq++;
    if (!st.tFirstComplete) st.tFirstComplete = t;
    st.tLast = t;
    if (st.uniq === expected) finish(false);
  };
  const onError = (e) => {
    st.errors++;
    st.firstErr ??= String(e?.message || e);
    if (st.errors === MAX_ERRORS) fatal(new Error(`worker: ${MAX_ERRORS} errors, first: ${st.firstErr}`));
  };
  handle = await transport.createWorker(init.cfg, { concurrency: init.concurrency, onComplete, onError, isDone: () => st.uniq >= expected });
  const start = async () => {
    st.tStart = now();
    await handle.start();
  };
  if (init.startImmediately) await start();
  send({ type: 'ready', role, client: handle.client });
  process.on('message', async (m) => {
    if (m.type === 'go') await start();
    if (m.type === 'report') finish(true); // parent gave up waiting: report partial counts
  });
}

async function main(init) {
  role = init.role;
  const transport = await loadTransport(init.transport);
  if (role === 'producer') await producer(init, transport);
  else if (role === 'worker') await worker(init, transport);
  else throw new Error(`unknown role ${role}`);
  process.on('message', async (m) => {
    if (m.type !== 'close') return;
    try {
      await Promise.race([handle.close(), sleep(10_000)]);
    } catch {
      // closing errors are not measurement errors
    }
    process.exit(0);
  });
}

process.once('message', (m) => {
  if (m.type === 'init') main(m).catch(fatal);
});
process.on('unhandledRejection', fatal);
process.on('disconnect', () => process.exit(0)); // the orchestrator went away: never linger
