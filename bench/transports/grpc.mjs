// gRPC transport for the bench: producer on the producer stream (creates acknowledged by seq),
// worker on the worker stream (one outstanding Ready per slot; Result acknowledged by ResultAck).
// Uses the generated stubs of @codeq/proto (resolved from apps/server's dependencies).
//
// cfg = {url (HTTP base, unused here), token, command, leaseSeconds, workerAddr, producerAddr}
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const req = createRequire(`${repoRoot}apps/server/package.json`);
const grpc = req('@grpc/grpc-js');
const proto = await import(pathToFileURL(`${repoRoot}packages/proto/dist/index.js`).href);
const { workerpb, producerpb } = proto;

export const name = 'grpc';

export async function describe() {
  return { transport: 'grpc', client: '@grpc/grpc-js', clientVersion: req('@grpc/grpc-js/package.json').version };
}

function helloAck(call, token, isWorker) {
  return new Promise((resolve, reject) => {
    const onData = (ev) => {
      if (ev.event?.$case === 'helloAck') {
        call.off('data', onData);
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
  try {
    await Promise.race([helloAck(call, cfg.token, false), new Promise((_, rej) => setTimeout(() => rej(new Error(`preflight: no HelloAck from ${cfg.producerAddr}`)), 5000))]);
  } finally {
    call.end();
    client.close();
  }
}

export async function createProducer(cfg) {
  const client = new producerpb.ProducerStreamClient(cfg.producerAddr, grpc.credentials.createInsecure());
  const call = client.stream();
  await helloAck(call, cfg.token, false);
  const pending = new Map();
  let seq = 0;
  let failures = 0;
  call.on('data', (ev) => {
    if (ev.event?.$case !== 'createAck') return;
    const a = ev.event.createAck;
    const p = pending.get(a.seq);
    if (!p) return;
    pending.delete(a.seq);
    if (a.ok) p.resolve();
    else {
      failures++;
      p.reject(new Error(`create failed: ${a.errorMessage}`));
    }
  });
  call.on('error', (e) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  });
  const batchMax = Number(cfg.batch ?? 1);
  let queued = [];
  const flush = () => {
    const items = queued;
    queued = [];
    if (items.length === 1) call.write({ event: { $case: 'create', create: items[0] } });
    else if (items.length) call.write({ event: { $case: 'createBatch', createBatch: { tasks: items } } });
  };
  call.on('data', (ev) => {
    if (ev.event?.$case !== 'createAckBatch') return;
    for (const a of ev.event.createAckBatch.acks) {
      const p = pending.get(a.seq);
      if (!p) continue;
      pending.delete(a.seq);
      if (a.ok) p.resolve();
      else p.reject(new Error(`create failed: ${a.errorMessage}`));
    }
  });
  return {
    client: batchMax > 1 ? `grpc producer stream (CreateTaskBatch ≤ ${batchMax})` : 'grpc producer stream',
    create(payload) {
      const s = String(++seq);
      return new Promise((resolve, reject) => {
        pending.set(s, { resolve, reject });
        const item = { seq: s, command: cfg.command, payload: Buffer.from(JSON.stringify(payload)), priority: 0, webhook: '', maxAttempts: 0, idempotencyKey: '', delaySeconds: 0, traceParent: '', traceState: '' };
        if (batchMax <= 1) return void call.write({ event: { $case: 'create', create: item } });
        queued.push(item);
        if (queued.length >= batchMax) flush();
        else if (queued.length === 1) setImmediate(flush);
      });
    },
    stats: () => ({ createFailures: failures }),
    async close() {
      call.end();
      client.close();
    },
  };
}

export async function createWorker(cfg, { concurrency, onComplete, onError, isDone }) {
  const client = new workerpb.WorkerStreamClient(cfg.workerAddr, grpc.credentials.createInsecure());
  const call = client.stream();
  await helloAck(call, cfg.token, true);
  const batch = Math.max(1, Number(cfg.batch ?? 1));
  const ready = { event: { $case: 'ready', ready: { commands: [cfg.command], leaseSeconds: cfg.leaseSeconds ?? 30, count: batch } } };
  const inflightResults = new Map();
  let stopped = false;
  const st = { tasks: 0, resultErrors: 0 };
  call.on('data', (ev) => {
    const e = ev.event;
    if (e?.$case === 'task') {
      const t = e.task.task;
      st.tasks++;
      let payload;
      try {
        payload = JSON.parse(t.payload.toString('utf8'));
      } catch (err) {
        onError(err);
      }
      inflightResults.set(t.id, payload);
      // no-op work, then report
      call.write({ event: { $case: 'result', result: { taskId: t.id, status: 'COMPLETED', resultJson: Buffer.from('{"ok":true}'), error: '', leaseId: t.leaseId } } });
    } else if (e?.$case === 'taskBatch') {
      const results = [];
      for (const t of e.taskBatch.tasks) {
        st.tasks++;
        try {
          inflightResults.set(t.id, JSON.parse(t.payload.toString('utf8')));
        } catch (err) {
          onError(err);
        }
        results.push({ taskId: t.id, status: 'COMPLETED', resultJson: Buffer.from('{"ok":true}'), error: '', leaseId: t.leaseId });
      }
      call.write({ event: { $case: 'resultBatch', resultBatch: { results } } });
    } else if (e?.$case === 'resultAckBatch') {
      for (const a of e.resultAckBatch.acks) {
        const payload = inflightResults.get(a.taskId);
        inflightResults.delete(a.taskId);
        if (a.ok) onComplete(payload);
        else onError(new Error(`result failed: ${a.errorMessage}`));
      }
      if (!stopped && !isDone()) call.write(ready);
    } else if (e?.$case === 'resultAck') {
      const a = e.resultAck;
      const payload = inflightResults.get(a.taskId);
      inflightResults.delete(a.taskId);
      if (a.ok) onComplete(payload);
      else {
        st.resultErrors++;
        onError(new Error(`result failed: ${a.errorMessage}`));
      }
      if (!stopped && !isDone()) call.write(ready); // the slot asks for its next task
    } else if (e?.$case === 'error') {
      onError(new Error(`${e.error.code}: ${e.error.message}`));
    }
  });
  call.on('error', (err) => {
    if (!stopped) onError(err);
  });
  return {
    client: 'grpc worker stream',
    async start() {
      for (let i = 0; i < Math.ceil(concurrency / batch); i++) call.write(ready);
    },
    stats: () => st,
    async close() {
      stopped = true;
      call.cancel();
      client.close();
    },
  };
}
