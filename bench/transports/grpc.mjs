// gRPC transport for the bench: the producer on the producer stream (creates acknowledged by seq),
// the worker on the worker stream (Ready credits; one Result per task, acknowledged by ResultAck).
// Uses the generated stubs of @codeq/proto (resolved from apps/server's dependencies), i.e. what an
// application using @grpc/grpc-js would do.
//
// cfg = {token, command, leaseSeconds, workerAddr, producerAddr, batch?}
//
// Message batching (`batch` = B, from cfg.batch or CODEQ_BENCH_GRPC_BATCH; default 1):
//   B = 1  one message per task, like upstream's Go SDKs by default: CreateTask → CreateAck,
//          Ready{count:1} → TaskAssignment, Result → ResultAck.
//   B > 1  what a client library does with concurrent calls: the creates issued in one event-loop
//          turn go out as one CreateTaskBatch (≤ B entries, acks in one CreateAckBatch); the worker
//          grants its free credits in Ready{count ≤ B} (answered by one TaskBatch) and the results
//          finished in one turn go out as one ResultBatch (one Result entry per task).
// Worker credits (CODEQ_BENCH_GRPC_CREDITS, default = the worker's concurrency): tasks held or
// requested at any time. A credit comes back when the task's result is sent (like the Go SDK's
// slot loop); a task counts as completed only when its ResultAck arrives.
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const req = createRequire(`${repoRoot}apps/server/package.json`);
const grpc = req('@grpc/grpc-js');
const proto = await import(pathToFileURL(`${repoRoot}packages/proto/dist/index.js`).href);
const { workerpb, producerpb } = proto;

export const name = 'grpc';

const envInt = (k) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : undefined);
const batchOf = (cfg) => Math.max(1, Math.floor(envInt('CODEQ_BENCH_GRPC_BATCH') ?? Number(cfg.batch ?? 1)));
const OK_RESULT = Buffer.from('{"ok":true}');

export async function describe(cfg = {}) {
  return { transport: 'grpc', client: '@grpc/grpc-js', clientVersion: req('@grpc/grpc-js/package.json').version, batch: batchOf(cfg), credits: envInt('CODEQ_BENCH_GRPC_CREDITS') ?? null };
}

function helloAck(call, token, isWorker) {
  return new Promise((resolve, reject) => {
    const onData = (ev) => {
      if (ev.event?.$case === 'helloAck') {
        call.off('data', onData);
        call.off('error', reject);
        resolve();
      }
    };
    call.on('data', onData);
    call.once('error', reject);
    call.write({ event: { $case: 'hello', hello: isWorker ? { token, workerId: '' } : { token } } });
  });
}

export async function preflight(cfg) {
  const client = new producerpb.ProducerStreamClient(cfg.producerAddr, grpc.credentials.createInsecure());
  const call = client.stream();
  call.on('error', () => undefined);
  let t;
  try {
    await Promise.race([helloAck(call, cfg.token, false), new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`preflight: no HelloAck from ${cfg.producerAddr}`)), 5000)))]);
  } finally {
    clearTimeout(t);
    call.end();
    client.close();
  }
}

export async function createProducer(cfg) {
  const batchMax = batchOf(cfg);
  const client = new producerpb.ProducerStreamClient(cfg.producerAddr, grpc.credentials.createInsecure());
  const call = client.stream();
  await helloAck(call, cfg.token, false);
  const pending = new Map(); // seq -> {resolve, reject}
  let seq = 0;
  let failures = 0;
  let messages = 0;
  const settle = (a) => {
    const p = pending.get(a.seq);
    if (!p) return;
    pending.delete(a.seq);
    if (a.ok) p.resolve(a.taskId);
    else {
      failures++;
      p.reject(new Error(`create failed: ${a.errorMessage}`));
    }
  };
  call.on('data', (ev) => {
    const e = ev.event;
    if (e?.$case === 'createAck') settle(e.createAck);
    else if (e?.$case === 'createAckBatch') for (const a of e.createAckBatch.acks) settle(a);
  });
  call.on('error', (e) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  });
  let queued = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const items = queued;
    queued = [];
    for (let i = 0; i < items.length; i += batchMax) {
      const part = items.slice(i, i + batchMax);
      messages++;
      if (part.length === 1) call.write({ event: { $case: 'create', create: part[0] } });
      else call.write({ event: { $case: 'createBatch', createBatch: { tasks: part } } });
    }
  };
  return {
    client: batchMax > 1 ? `grpc producer stream (creates of one turn in one CreateTaskBatch ≤ ${batchMax})` : 'grpc producer stream (one CreateTask per task)',
    create(payload) {
      const s = String(++seq);
      return new Promise((resolve, reject) => {
        pending.set(s, { resolve, reject });
        const item = { seq: s, command: cfg.command, payload: Buffer.from(JSON.stringify(payload)), priority: 0, webhook: '', maxAttempts: 0, idempotencyKey: '', delaySeconds: 0, traceParent: '', traceState: '' };
        if (batchMax <= 1) {
          messages++;
          return void call.write({ event: { $case: 'create', create: item } });
        }
        queued.push(item);
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    stats: () => ({ createFailures: failures, producerMessages: messages }),
    async close() {
      call.end();
      client.close();
    },
  };
}

export async function createWorker(cfg, { concurrency, onComplete, onError, isDone }) {
  const batchMax = batchOf(cfg);
  const credits = Math.max(1, envInt('CODEQ_BENCH_GRPC_CREDITS') ?? concurrency);
  const client = new workerpb.WorkerStreamClient(cfg.workerAddr, grpc.credentials.createInsecure());
  const call = client.stream();
  await helloAck(call, cfg.token, true);
  const st = { tasks: 0, resultErrors: 0, readyMessages: 0, taskMessages: 0, resultMessages: 0 };
  let stopped = false;
  let free = credits; // credits neither requested nor held
  const asked = []; // counts of outstanding Readys, oldest first (answered in order, ≤ count each)
  const payloads = new Map(); // task id -> payload, until its ResultAck
  let results = [];
  let scheduled = false;

  const ready = (count) => {
    st.readyMessages++;
    asked.push(count);
    call.write({ event: { $case: 'ready', ready: { commands: [cfg.command], leaseSeconds: cfg.leaseSeconds ?? 30, count } } });
  };
  const turn = () => {
    scheduled = false;
    // results finished in this turn
    if (results.length) {
      const rs = results;
      results = [];
      for (let i = 0; i < rs.length; i += batchMax) {
        const part = rs.slice(i, i + batchMax);
        st.resultMessages++;
        if (part.length === 1) call.write({ event: { $case: 'result', result: part[0] } });
        else call.write({ event: { $case: 'resultBatch', resultBatch: { results: part } } });
        free += part.length; // the slot is free again once its result is on its way
      }
    }
    // grant the free credits
    if (stopped || isDone()) return;
    while (free > 0) {
      const n = batchMax > 1 ? Math.min(free, batchMax) : 1;
      free -= n;
      ready(batchMax > 1 ? n : 1);
    }
  };
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(turn);
    }
  };
  const onTasks = (tasks) => {
    const n = asked.shift() ?? tasks.length;
    free += n - tasks.length; // credits of the Ready that this answer did not use
    for (const t of tasks) {
      st.tasks++;
      let payload;
      try {
        payload = JSON.parse(t.payload.toString('utf8'));
      } catch (err) {
        onError(err);
      }
      payloads.set(t.id, payload);
      // the handler is a no-op; report the task done
      results.push({ taskId: t.id, status: 'COMPLETED', resultJson: OK_RESULT, error: '', leaseId: t.leaseId });
    }
    schedule();
  };
  const onAck = (a) => {
    const payload = payloads.get(a.taskId);
    payloads.delete(a.taskId);
    if (a.ok) onComplete(payload);
    else {
      st.resultErrors++;
      onError(new Error(`result failed: ${a.errorMessage}`));
    }
  };
  call.on('data', (ev) => {
    const e = ev.event;
    switch (e?.$case) {
      case 'task':
        st.taskMessages++;
        return onTasks([e.task.task]);
      case 'taskBatch':
        st.taskMessages++;
        return onTasks(e.taskBatch.tasks);
      case 'resultAck':
        return onAck(e.resultAck);
      case 'resultAckBatch':
        for (const a of e.resultAckBatch.acks) onAck(a);
        return;
      case 'error':
        return onError(new Error(`${e.error.code}: ${e.error.message}`));
    }
  });
  call.on('error', (err) => {
    if (!stopped) onError(err);
  });
  return {
    client: batchMax > 1 ? `grpc worker stream (${credits} credits, Ready.count ≤ ${batchMax}, results of one turn in one ResultBatch)` : `grpc worker stream (${credits} credits as Ready{count:1}, one Result per task)`,
    async start() {
      turn();
    },
    stats: () => st,
    async close() {
      stopped = true;
      call.cancel();
      client.close();
    },
  };
}
