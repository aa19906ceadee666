/** Worker and producer gRPC streams over loopback with real grpc-js clients. */
import * as grpc from '@grpc/grpc-js';
import { client, sleep, startServer, T, type RunningServer } from './harness.js';
import { is, producerStream, workerStream } from './grpc-clients.js';

let s: RunningServer;
let ports: { workerPort: number; producerPort: number };
const open: { close(): void }[] = [];
beforeEach(async () => {
  s = await startServer({ workerStreamAddr: '127.0.0.1:0', producerStreamAddr: '127.0.0.1:0', backoffPolicy: 'fixed', backoffBaseSeconds: 0 });
  ports = s.app.streams;
});
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await s.stop();
});

async function worker(token: string = T.worker) {
  const w = workerStream(ports.workerPort);
  open.push(w);
  w.send({ event: { $case: 'hello', hello: { token, workerId: '' } } });
  return w;
}
async function producer(token: string = T.producer) {
  const p = producerStream(ports.producerPort);
  open.push(p);
  p.send({ event: { $case: 'hello', hello: { token } } });
  await p.next(is('helloAck'));
  return p;
}
let seq = 0;
const create = (command: string, payload: unknown, extra: Record<string, unknown> = {}) => ({
  event: {
    $case: 'create' as const,
    create: { seq: String(++seq), command, payload: Buffer.from(JSON.stringify(payload)), priority: 0, webhook: '', maxAttempts: 0, idempotencyKey: '', delaySeconds: 0, traceParent: '', traceState: '', ...extra },
  },
});
const ready = (commands: string[], count = 1, leaseSeconds = 60) => ({ event: { $case: 'ready' as const, ready: { commands, leaseSeconds, count } } });

describe('stream auth', () => {
  it('rejects a missing Hello, bad tokens, and producer tokens on the worker stream', async () => {
    const first = workerStream(ports.workerPort);
    open.push(first);
    first.send(ready(['x']));
    expect(await first.status).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: 'first event must be Hello' });

    const bad = await worker('nope');
    expect((await bad.status).code).toBe(grpc.status.UNAUTHENTICATED);
    const empty = await worker('  ');
    expect(await empty.status).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: 'auth failed: missing token' });
    const prod = await worker(T.producer);
    expect((await prod.status).details).toMatch(/^auth failed: /);

    const p = producerStream(ports.producerPort);
    open.push(p);
    p.send({ event: { $case: 'hello', hello: { token: T.worker } } });
    expect((await p.status).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('answers Hello with the token subject and tenant, and refuses events without scope', async () => {
    const w = await worker(T.limited);
    expect((await w.next(is('helloAck'))).event).toEqual({ $case: 'helloAck', helloAck: { workerId: 'limited', tenantId: 'acme' } });
    w.send({ event: { $case: 'heartbeat', heartbeat: { taskId: 'x', extendSeconds: 10, leaseId: '' } } });
    expect((await w.next(is('error'))).event).toEqual({ $case: 'error', error: { code: 'PermissionDenied', message: 'missing scope' } });
    w.send(ready(['OTHER']));
    expect((await w.next(is('error'))).event).toMatchObject({ error: { message: 'event type not allowed' } });
    w.send({ event: { $case: 'hello', hello: { token: T.limited, workerId: '' } } });
    expect((await w.next(is('error'))).event).toMatchObject({ error: { code: 'FailedPrecondition', message: 'already-authenticated' } });
  });
});

describe('stream task cycle', () => {
  it('creates on the producer stream, pushes to a waiting Ready, completes on the worker stream', async () => {
    const w = await worker();
    await w.next(is('helloAck'));
    w.send(ready(['render'])); // waits: nothing there yet
    await sleep(100);
    const p = await producer();
    p.send(create('render', { frame: 7 }, { priority: 4 }));
    const ack = (await p.next(is('createAck'))).event;
    if (ack?.$case !== 'createAck') throw new Error('no ack');
    expect(ack.createAck).toMatchObject({ seq: String(seq), ok: true });
    const pushed = (await w.next(is('task'))).event;
    if (pushed?.$case !== 'task') throw new Error('no task');
    const task = pushed.task.task!;
    expect(task).toMatchObject({ id: ack.createAck.taskId, command: 'render', priority: 4, status: 'IN_PROGRESS', workerId: 'worker-1', tenantId: 'acme', attempts: 1 });
    expect(JSON.parse(task.payload.toString())).toEqual({ frame: 7 });
    w.send({ event: { $case: 'result', result: { taskId: task.id, status: 'COMPLETED', resultJson: Buffer.from('{"ok":true}'), error: '', leaseId: task.leaseId } } });
    expect((await w.next(is('resultAck'))).event).toMatchObject({ resultAck: { taskId: task.id, ok: true } });
    const got = await client(s.url).get(task.id);
    expect(got.body).toMatchObject({ status: 'COMPLETED' });
    expect((await client(s.url).getResult(task.id)).body.result.result).toEqual({ ok: true });
  });

  it('limits outstanding tasks to the Readys sent (credits) and batches with count', async () => {
    const c = client(s.url);
    for (let i = 0; i < 5; i++) await c.create({ command: 'credit', payload: i });
    const w = await worker();
    await w.next(is('helloAck'));
    w.send(ready(['credit'], 2));
    const batch = (await w.next(is('taskBatch'))).event;
    if (batch?.$case !== 'taskBatch') throw new Error('no batch');
    expect(batch.taskBatch.tasks).toHaveLength(2);
    await sleep(200);
    await expect(w.next(is('task'), 100)).rejects.toThrow(/no matching event/);
    expect((await c.call('GET', '/v1/codeq/admin/queues/credit', { token: T.producer })).body).toMatchObject({ ready: 3, inProgress: 2 });
    w.send(ready(['credit']));
    await w.next(is('task'));
  });

  it('extends leases by heartbeat, nacks to the DLQ and abandons', async () => {
    const c = client(s.url);
    const id = (await c.create({ command: 'hb', payload: 1, maxAttempts: 2 })).body.id;
    const other = (await c.create({ command: 'ab', payload: 1 })).body.id;
    const w = await worker();
    await w.next(is('helloAck'));
    w.send(ready(['hb'], 1, 2));
    const t = (await w.next(is('task'))).event;
    if (t?.$case !== 'task') throw new Error('no task');
    w.send({ event: { $case: 'heartbeat', heartbeat: { taskId: id, extendSeconds: 120, leaseId: t.task.task!.leaseId } } });
    const hb = (await w.next(is('heartbeatAck'))).event;
    expect(hb).toMatchObject({ heartbeatAck: { taskId: id, ok: true } });
    await sleep(2200); // past the original 2 s lease: still held thanks to the heartbeat
    expect((await c.get(id)).body).toMatchObject({ status: 'IN_PROGRESS', attempts: 1 });
    w.send({ event: { $case: 'nack', nack: { taskId: id, delaySeconds: 0, reason: 'retry', leaseId: '' } } });
    expect((await w.next(is('nackAck'))).event).toMatchObject({ nackAck: { ok: true, dlq: false } });
    w.send(ready(['hb']));
    await w.next(is('task'));
    w.send({ event: { $case: 'nack', nack: { taskId: id, delaySeconds: 0, reason: 'poison', leaseId: '' } } });
    expect((await w.next(is('nackAck'))).event).toMatchObject({ nackAck: { ok: true, dlq: true, appliedDelaySeconds: 0 } });
    expect((await c.get(id)).body).toMatchObject({ status: 'FAILED', lastKnownLocation: 'DLQ_SET', error: 'poison' });
    w.send(ready(['ab']));
    await w.next(is('task'));
    w.send({ event: { $case: 'abandon', abandon: { taskId: other, leaseId: '' } } });
    expect((await w.next(is('abandonAck'))).event).toMatchObject({ abandonAck: { ok: true } });
    expect((await c.get(other)).body).toMatchObject({ status: 'PENDING', attempts: 1 });
    w.send({ event: { $case: 'abandon', abandon: { taskId: other, leaseId: '' } } });
    expect((await w.next(is('abandonAck'))).event).toMatchObject({ abandonAck: { ok: false, errorMessage: 'not-owner', errorCode: 'NOT_OWNER' } });
  });

  it('redelivers a task whose lease expires while the stream is open, and after the client vanishes', async () => {
    const c = client(s.url);
    const id = (await c.create({ command: 'exp', payload: 1 })).body.id;
    const w1 = await worker();
    await w1.next(is('helloAck'));
    w1.send(ready(['exp'], 1, 1));
    await w1.next(is('task'));
    w1.cancel(); // the client vanishes mid-lease
    const w2 = await worker(T.worker2);
    await w2.next(is('helloAck'));
    w2.send(ready(['exp'], 1, 1));
    const again = (await w2.next(is('task'), 5000)).event;
    expect(again).toMatchObject({ task: { task: { id, attempts: 2, workerId: 'worker-2' } } });
    // lease expiry with the stream still open: redelivered to the next Ready
    w2.send(ready(['exp'], 1, 30));
    const third = (await w2.next(is('task'), 5000)).event;
    expect(third).toMatchObject({ task: { task: { id, attempts: 3 } } });
  });

  it('keeps tenants apart on streams', async () => {
    const c = client(s.url);
    const id = (await c.create({ command: 'sec', payload: 1 })).body.id;
    const g = await worker(T.globexWorker);
    await g.next(is('helloAck'));
    g.send({ event: { $case: 'result', result: { taskId: id, status: 'COMPLETED', resultJson: Buffer.from('{}'), error: '', leaseId: '' } } });
    expect((await g.next(is('resultAck'))).event).toMatchObject({ resultAck: { ok: false, errorMessage: 'task not found' } });
    g.send(ready(['sec']));
    await expect(g.next(is('task'), 300)).rejects.toThrow();
    expect((await c.get(id)).body.status).toBe('PENDING');
  });

  it('serves many concurrent streams without duplicate deliveries', async () => {
    const n = 200;
    const workers = await Promise.all(Array.from({ length: 20 }, () => worker()));
    await Promise.all(workers.map((w) => w.next(is('helloAck'))));
    const seen: string[] = [];
    const loops = workers.map(async (w) => {
      for (;;) {
        w.send(ready(['many']));
        let ev;
        try {
          ev = (await w.next(is('task'), 1500)).event;
        } catch {
          return;
        }
        if (ev?.$case !== 'task') return;
        const t = ev.task.task!;
        seen.push(t.id);
        w.send({ event: { $case: 'result', result: { taskId: t.id, status: 'COMPLETED', resultJson: Buffer.from('{}'), error: '', leaseId: t.leaseId } } });
        await w.next(is('resultAck'));
      }
    });
    const p = await producer();
    p.send({ event: { $case: 'createBatch', createBatch: { tasks: Array.from({ length: n }, (_, i) => create('many', { i }).event.create) } } });
    const acks = (await p.next(is('createAckBatch'))).event;
    expect(acks).toMatchObject({ createAckBatch: { acks: expect.any(Array) } });
    await Promise.all(loops);
    expect(seen).toHaveLength(n);
    expect(new Set(seen).size).toBe(n);
  });

  it('validates producer creates and honours idempotency keys per tenant', async () => {
    const p = await producer();
    p.send(create('  ', 1));
    expect((await p.next(is('createAck'))).event).toMatchObject({ createAck: { ok: false, errorMessage: 'command is required' } });
    p.send(create('x', 1, { delaySeconds: -1 }));
    expect((await p.next(is('createAck'))).event).toMatchObject({ createAck: { ok: false, errorMessage: 'delaySeconds must be >= 0' } });
    p.send(create('x', 1, { webhook: 'ftp://nope' }));
    expect((await p.next(is('createAck'))).event).toMatchObject({ createAck: { ok: false, errorMessage: 'invalid webhook url' } });
    p.send(create('x', 1, { idempotencyKey: 'k' }));
    const a = (await p.next(is('createAck'))).event;
    p.send(create('x', 2, { idempotencyKey: 'k' }));
    const b = (await p.next(is('createAck'))).event;
    if (a?.$case !== 'createAck' || b?.$case !== 'createAck') throw new Error('acks');
    expect(b.createAck.taskId).toBe(a.createAck.taskId);
  });
});

describe('stream shutdown', () => {
  it('ends open streams with UNAVAILABLE when the server stops', async () => {
    const w = await worker();
    await w.next(is('helloAck'));
    w.send(ready(['idle']));
    const p = await producer();
    const stopping = s.stop();
    expect((await w.status).code).toBe(grpc.status.UNAVAILABLE);
    expect((await p.status).code).toBe(grpc.status.UNAVAILABLE);
    await stopping;
    s = await startServer(); // for afterEach
  });
});
