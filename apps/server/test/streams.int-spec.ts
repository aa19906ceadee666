/**
 * Worker and producer gRPC streams against the real server (harness: createApp, SQLite in a temp
 * dir, ephemeral loopback ports) with real grpc-js clients built from the generated stubs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ALL_SCOPES, client, sleep, startServer, T, type RunningServer } from './harness.js';
import { as, is, producerStream, workerStream } from './grpc-clients.js';
import { WorkerStreamService } from '../src/modules/streams/worker-stream.service.js';
import { ProducerStreamService } from '../src/modules/streams/producer-stream.service.js';

const STREAMS = { workerStreamAddr: '127.0.0.1:0', producerStreamAddr: '127.0.0.1:0', backoffPolicy: 'fixed', backoffBaseSeconds: 0 };

let s: RunningServer;
let ports: { workerPort: number; producerPort: number };
const open: { close(): void }[] = [];
beforeEach(async () => {
  s = await startServer(STREAMS);
  ports = s.app.streams;
});
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await s.stop();
});

function rawWorker() {
  const w = workerStream(ports.workerPort);
  open.push(w);
  return w;
}
function worker(token: string = T.worker, workerId = '') {
  const w = rawWorker();
  w.send({ event: { $case: 'hello', hello: { token, workerId } } });
  return w;
}
async function readyWorker(token: string = T.worker) {
  const w = worker(token);
  await w.next(is('helloAck'));
  return w;
}
function rawProducer() {
  const p = producerStream(ports.producerPort);
  open.push(p);
  return p;
}
async function producer(token: string = T.producer) {
  const p = rawProducer();
  p.send({ event: { $case: 'hello', hello: { token } } });
  await p.next(is('helloAck'));
  return p;
}
let seq = 0;
const createTask = (command: string, payload: unknown, extra: Record<string, unknown> = {}) => ({
  seq: String(++seq),
  command,
  payload: Buffer.from(JSON.stringify(payload)),
  priority: 0,
  webhook: '',
  maxAttempts: 0,
  idempotencyKey: '',
  delaySeconds: 0,
  traceParent: '',
  traceState: '',
  ...extra,
});
const create = (command: string, payload: unknown, extra: Record<string, unknown> = {}) => ({ event: { $case: 'create' as const, create: createTask(command, payload, extra) } });
const ready = (commands: string[], count = 1, leaseSeconds = 60) => ({ event: { $case: 'ready' as const, ready: { commands, leaseSeconds, count } } });
const result = (taskId: string, leaseId = '', status = 'COMPLETED', json = '{}', error = '') => ({
  event: { $case: 'result' as const, result: { taskId, status, resultJson: Buffer.from(json), error, leaseId } },
});
async function statsOf(command: string) {
  return (await client(s.url).call('GET', `/v1/codeq/admin/queues/${command}`, { token: T.producer })).body as { ready: number; inProgress: number; delayed: number; dlq: number };
}

describe('handshake and auth', () => {
  it('ends the RPC when the first event is not Hello, or the token is missing or refused', async () => {
    const first = rawWorker();
    first.send(ready(['x']));
    expect(await first.status).toEqual({ code: grpc.status.FAILED_PRECONDITION, details: 'first event must be Hello' });

    expect(await worker('  ').status).toEqual({ code: grpc.status.UNAUTHENTICATED, details: 'auth failed: missing token' });
    const bad = await worker('nope').status;
    expect(bad.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(bad.details).toMatch(/^auth failed: /);
    // a producer token is not a worker token (allowProducerAsWorker is off)
    const prodOnWorker = await worker(T.producer).status;
    expect(prodOnWorker).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(prodOnWorker.details).toMatch(/^auth failed: /);

    const pFirst = rawProducer();
    pFirst.send(create('x', 1));
    expect(await pFirst.status).toEqual({ code: grpc.status.FAILED_PRECONDITION, details: 'first event must be Hello' });
    const pEmpty = rawProducer();
    pEmpty.send({ event: { $case: 'hello', hello: { token: '' } } });
    expect(await pEmpty.status).toEqual({ code: grpc.status.UNAUTHENTICATED, details: 'missing token' });
    const workerOnProducer = rawProducer();
    workerOnProducer.send({ event: { $case: 'hello', hello: { token: T.worker } } });
    const wop = await workerOnProducer.status;
    expect(wop.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(wop.details).toMatch(/^auth failed: /);
  }, 10_000);

  it('refuses invalid tenant claims with PERMISSION_DENIED', async () => {
    const bad = { token: 'bad-tenant', subject: 'x', raw: { tid: 'Not A Tenant' } };
    const s2 = await startServer({
      ...STREAMS,
      workerAuthProvider: 'static',
      workerAuthConfig: { ...bad, scopes: ALL_SCOPES, eventTypes: ['*'] },
      producerAuthProvider: 'static',
      producerAuthConfig: bad,
    });
    try {
      const w = workerStream(s2.app.streams.workerPort);
      const p = producerStream(s2.app.streams.producerPort);
      open.push(w, p);
      w.send({ event: { $case: 'hello', hello: { token: 'bad-tenant', workerId: '' } } });
      p.send({ event: { $case: 'hello', hello: { token: 'bad-tenant' } } });
      expect(await w.status).toEqual({ code: grpc.status.PERMISSION_DENIED, details: 'invalid tenant claims' });
      expect(await p.status).toEqual({ code: grpc.status.PERMISSION_DENIED, details: 'invalid tenant claims' });
    } finally {
      await s2.stop();
    }
  }, 10_000);

  it('refuses a worker token without eventTypes or without scopes: UNAUTHENTICATED "auth failed: missing …" (§4.2 step 2)', async () => {
    const s2 = await startServer({
      ...STREAMS,
      workerAuthConfig: {
        providers: [
          { type: 'static', config: { token: 'no-types', subject: 'w1', scopes: ALL_SCOPES, raw: { tid: 'acme' } } },
          { type: 'static', config: { token: 'no-scopes', subject: 'w2', eventTypes: ['*'], raw: { tid: 'acme' } } },
        ],
      },
    });
    try {
      for (const [token, details] of [
        ['no-types', 'auth failed: missing eventTypes'],
        ['no-scopes', 'auth failed: missing scope'],
      ] as const) {
        const w = workerStream(s2.app.streams.workerPort);
        open.push(w);
        w.send({ event: { $case: 'hello', hello: { token, workerId: '' } } });
        expect(await w.status).toEqual({ code: grpc.status.UNAUTHENTICATED, details });
      }
    } finally {
      await s2.stop();
    }
  }, 10_000);

  it('allowProducerAsWorker: a producer token works the stream as its subject; its bad tenant claims are PERMISSION_DENIED', async () => {
    const s2 = await startServer({
      ...STREAMS,
      allowProducerAsWorker: true,
      producerAuthConfig: {
        providers: [
          { type: 'static', config: { token: T.producer, subject: 'acme-producer', raw: { tid: 'acme' } } },
          { type: 'static', config: { token: 'conflicting', subject: 'p2', raw: { tid: 'acme', tenantId: 'globex' } } },
        ],
      },
    });
    try {
      const ok = workerStream(s2.app.streams.workerPort);
      const conflicting = workerStream(s2.app.streams.workerPort);
      open.push(ok, conflicting);
      ok.send({ event: { $case: 'hello', hello: { token: T.producer, workerId: '' } } });
      expect(as(await ok.next(is('helloAck')), 'helloAck').helloAck).toEqual({ workerId: 'acme-producer', tenantId: 'acme' });
      // grpc-streams.md §4.2: the producer validator accepted the token, so the tenant step decides.
      conflicting.send({ event: { $case: 'hello', hello: { token: 'conflicting', workerId: '' } } });
      expect(await conflicting.status).toEqual({ code: grpc.status.PERMISSION_DENIED, details: 'invalid tenant claims' });
      // The same token on a worker HTTP route: 403, as a worker token with bad tenant claims.
      const http = await client(s2.url).claim({ commands: ['x'] }, 'conflicting');
      expect(http.status).toBe(403);
      expect(http.body).toMatchObject({ error: 'invalid tenant claims' });
    } finally {
      await s2.stop();
    }
  }, 10_000);

  it('ends a stream without Hello after the Hello timeout', async () => {
    s.app.app.get(WorkerStreamService).helloTimeoutMs = 200;
    s.app.app.get(ProducerStreamService).helloTimeoutMs = 200;
    const w = rawWorker(); // the RPC is open; no Hello follows
    const p = rawProducer();
    expect(await w.status).toEqual({ code: grpc.status.DEADLINE_EXCEEDED, details: 'no Hello within 200ms' });
    expect((await p.status).code).toBe(grpc.status.DEADLINE_EXCEEDED);
  }, 10_000);

  it('binds the worker id to the token subject and checks scopes and event types per event', async () => {
    const w = worker(T.limited, 'someone-else');
    expect(as(await w.next(is('helloAck')), 'helloAck').helloAck).toEqual({ workerId: 'limited', tenantId: 'acme' });
    w.send({ event: { $case: 'heartbeat', heartbeat: { taskId: 'x', extendSeconds: 10, leaseId: '' } } });
    expect(as(await w.next(is('error')), 'error').error).toEqual({ code: 'PermissionDenied', message: 'missing scope' });
    w.send(result('x'));
    expect(as(await w.next(is('error')), 'error').error).toEqual({ code: 'PermissionDenied', message: 'missing scope' });
    w.send(ready(['OTHER']));
    expect(as(await w.next(is('error')), 'error').error).toEqual({ code: 'PermissionDenied', message: 'event type not allowed' });
    w.send(ready(['  ']));
    expect(as(await w.next(is('error')), 'error').error).toEqual({ code: 'PermissionDenied', message: 'event type not allowed' });
    w.send({ event: { $case: 'hello', hello: { token: T.limited, workerId: '' } } });
    expect(as(await w.next(is('error')), 'error').error).toEqual({ code: 'FailedPrecondition', message: 'already-authenticated' });
    w.send({ event: undefined });
    expect(as(await w.next(is('error')), 'error').error).toEqual({ code: 'InvalidArgument', message: 'unknown-event' });
    // the session continues: a permitted Ready is served
    await client(s.url).create({ command: 'ONLY_THIS', payload: 1 });
    w.send(ready(['ONLY_THIS']));
    expect(as(await w.next(is('task')), 'task').task.task).toMatchObject({ command: 'ONLY_THIS', workerId: 'limited' });
  }, 10_000);

  it('handles events pipelined behind the Hello (sent before the HelloAck)', async () => {
    await client(s.url).create({ command: 'pipelined', payload: 1 });
    const w = rawWorker();
    w.send({ event: { $case: 'hello', hello: { token: T.worker, workerId: '' } } });
    w.send(ready(['pipelined']));
    await w.next(is('helloAck'));
    expect(as(await w.next(is('task')), 'task').task.task).toMatchObject({ command: 'pipelined' });
    const p = rawProducer();
    p.send({ event: { $case: 'hello', hello: { token: T.producer } } });
    p.send(create('pipelined', 2));
    await p.next(is('helloAck'));
    expect(as(await p.next(is('createAck')), 'createAck').createAck).toMatchObject({ ok: true });
  }, 10_000);
});

describe('task cycle', () => {
  it('creates on the producer stream, pushes to a waiting Ready, completes on the worker stream (HTTP sees COMPLETED)', async () => {
    const w = await readyWorker();
    w.send(ready(['render'])); // waits: nothing there yet
    await sleep(100);
    const p = await producer();
    p.send(create('render', { frame: 7 }, { priority: 4 }));
    const ack = as(await p.next(is('createAck')), 'createAck').createAck;
    expect(ack).toMatchObject({ seq: String(seq), ok: true, errorMessage: '' });
    const task = as(await w.next(is('task')), 'task').task.task!;
    expect(task).toMatchObject({ id: ack.taskId, command: 'render', priority: 4, status: 'IN_PROGRESS', workerId: 'worker-1', tenantId: 'acme', attempts: 1, maxAttempts: 5 });
    expect(task.leaseId).toMatch(/^[0-9a-f-]{36}$/);
    expect(task.leaseUntil).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(JSON.parse(task.payload.toString())).toEqual({ frame: 7 });
    w.send(result(task.id, task.leaseId, 'COMPLETED', '{"ok":true}'));
    expect(as(await w.next(is('resultAck')), 'resultAck').resultAck).toEqual({ taskId: task.id, ok: true, errorMessage: '', errorCode: '' });
    const c = client(s.url);
    expect((await c.get(task.id)).body).toMatchObject({ status: 'COMPLETED' });
    expect((await c.getResult(task.id)).body.result.result).toEqual({ ok: true });
    // the same result again is answered from the stored record; a FAILED one is refused
    w.send(result(task.id, task.leaseId, 'COMPLETED', '{"ok":true}'));
    expect(as(await w.next(is('resultAck')), 'resultAck').resultAck.ok).toBe(true);
    w.send(result(task.id, '', 'DONE'));
    expect(as(await w.next(is('resultAck')), 'resultAck').resultAck).toMatchObject({ ok: false, errorMessage: 'invalid status (must be COMPLETED or FAILED): "DONE"' });
    w.send(result(task.id, '', 'COMPLETED', '[1]'));
    expect(as(await w.next(is('resultAck')), 'resultAck').resultAck).toMatchObject({ ok: false, errorMessage: 'invalid result_json' });
  }, 10_000);

  it('never holds more tasks than the credits granted (Ready count), and answers each Ready once', async () => {
    const c = client(s.url);
    for (let i = 0; i < 5; i++) await c.create({ command: 'credit', payload: i });
    const w = await readyWorker();
    w.send(ready(['credit'], 2));
    expect(as(await w.next(is('taskBatch')), 'taskBatch').taskBatch.tasks).toHaveLength(2);
    await sleep(200);
    expect(w.queued).toHaveLength(0); // nothing more without a new Ready
    expect(await statsOf('credit')).toMatchObject({ ready: 3, inProgress: 2 });
    // several single Readys: one TaskAssignment each
    w.send(ready(['credit']));
    w.send(ready(['credit']));
    await w.next(is('task'));
    await w.next(is('task'));
    // a Ready for 5 with 1 task left gets a batch of 1, and the rest of its credits lapse
    w.send(ready(['credit'], 5));
    expect(as(await w.next(is('taskBatch')), 'taskBatch').taskBatch.tasks).toHaveLength(1);
    await c.create({ command: 'credit', payload: 'late' });
    await sleep(200);
    expect(w.queued).toHaveLength(0);
    expect(await statsOf('credit')).toMatchObject({ ready: 1, inProgress: 5 });
    // Readys with a count above 1000 are served up to 1000 (bound)
    w.send(ready(['credit'], 1_000_000));
    expect(as(await w.next(is('taskBatch')), 'taskBatch').taskBatch.tasks).toHaveLength(1);
  }, 10_000);

  it('keeps a Ready waiting across claim re-arms for as long as the stream lives (no 30 s give-up)', async () => {
    s.app.app.get(WorkerStreamService).claimSliceSeconds = 0.2;
    const w = await readyWorker();
    w.send(ready(['late'], 2));
    await sleep(1200); // several re-arms; upstream would have given up silently after its budget
    expect(w.queued).toHaveLength(0);
    await client(s.url).create({ command: 'late', payload: 1 });
    expect(as(await w.next(is('taskBatch')), 'taskBatch').taskBatch.tasks).toHaveLength(1);
  }, 10_000);

  it('bounds the outstanding Readys of a stream', async () => {
    const w = await readyWorker();
    for (let i = 0; i < 10_000; i++) w.send(ready(['never']));
    w.send(ready(['never']));
    expect(as(await w.next(is('error')), 'error').error).toEqual({ code: 'ResourceExhausted', message: 'too many outstanding Readys' });
    // still alive and answering
    w.send({ event: { $case: 'abandon', abandon: { taskId: 'x', leaseId: '' } } });
    expect((await w.next()).event?.$case).toBe('abandonAck');
  }, 10_000);

  it('serves waiting Readys in arrival order, woken by creates (no polling, no give-up)', async () => {
    const w = await readyWorker();
    w.send(ready(['fifo'], 3));
    w.send(ready(['fifo'], 1));
    await sleep(300);
    const p = await producer();
    p.send({ event: { $case: 'createBatch', createBatch: { tasks: [1, 2, 3, 4, 5].map((i) => createTask('fifo', { i })) } } });
    await p.next(is('createAckBatch'));
    const first = as(await w.next(), 'taskBatch').taskBatch.tasks.map((t) => JSON.parse(t.payload.toString()).i);
    const second = JSON.parse(as(await w.next(), 'task').task.task!.payload.toString()).i;
    expect([...first, second]).toEqual([1, 2, 3, 4]);
    expect(await statsOf('fifo')).toMatchObject({ ready: 1, inProgress: 4 });
  }, 10_000);

  it('extends a lease by heartbeat (new leaseUntil), nacks to the DLQ and abandons', async () => {
    const c = client(s.url);
    const id = (await c.create({ command: 'hb', payload: 1, maxAttempts: 2 })).body.id;
    const other = (await c.create({ command: 'ab', payload: 1 })).body.id;
    const w = await readyWorker();
    w.send(ready(['hb'], 1, 1));
    const t = as(await w.next(is('task')), 'task').task.task!;
    w.send({ event: { $case: 'heartbeat', heartbeat: { taskId: id, extendSeconds: 120, leaseId: t.leaseId } } });
    const hb = as(await w.next(is('heartbeatAck')), 'heartbeatAck').heartbeatAck;
    expect(hb).toMatchObject({ taskId: id, ok: true, errorMessage: '' });
    expect(Date.parse(hb.leaseUntil) - Date.now()).toBeGreaterThan(100_000);
    await sleep(1500); // past the original 1 s lease: still held thanks to the heartbeat
    expect((await c.get(id)).body).toMatchObject({ status: 'IN_PROGRESS', attempts: 1 });
    // a stale lease id is refused
    w.send({ event: { $case: 'heartbeat', heartbeat: { taskId: id, extendSeconds: 10, leaseId: '00000000-0000-0000-0000-000000000000' } } });
    expect(as(await w.next(is('heartbeatAck')), 'heartbeatAck').heartbeatAck).toMatchObject({ ok: false, errorCode: 'LEASE_NOT_HELD' });
    w.send({ event: { $case: 'nack', nack: { taskId: id, delaySeconds: 0, reason: 'retry', leaseId: t.leaseId } } });
    expect(as(await w.next(is('nackAck')), 'nackAck').nackAck).toMatchObject({ taskId: id, ok: true, dlq: false });
    w.send(ready(['hb']));
    const again = as(await w.next(is('task')), 'task').task.task!;
    expect(again).toMatchObject({ id, attempts: 2 });
    w.send({ event: { $case: 'nack', nack: { taskId: id, delaySeconds: 0, reason: 'poison', leaseId: '' } } });
    expect(as(await w.next(is('nackAck')), 'nackAck').nackAck).toMatchObject({ ok: true, dlq: true, appliedDelaySeconds: 0 });
    expect((await c.get(id)).body).toMatchObject({ status: 'FAILED', lastKnownLocation: 'DLQ_SET', error: 'poison' });
    expect((await statsOf('hb')).dlq).toBe(1);

    w.send(ready(['ab']));
    await w.next(is('task'));
    w.send({ event: { $case: 'abandon', abandon: { taskId: other, leaseId: '' } } });
    expect(as(await w.next(is('abandonAck')), 'abandonAck').abandonAck).toMatchObject({ taskId: other, ok: true });
    expect((await c.get(other)).body).toMatchObject({ status: 'PENDING', attempts: 1 });
    w.send({ event: { $case: 'abandon', abandon: { taskId: other, leaseId: '' } } });
    expect(as(await w.next(is('abandonAck')), 'abandonAck').abandonAck).toMatchObject({ ok: false, errorMessage: 'not-owner', errorCode: 'NOT_OWNER' });
    w.send({ event: { $case: 'abandon', abandon: { taskId: 'no-such-task', leaseId: '' } } });
    expect(as(await w.next(is('abandonAck')), 'abandonAck').abandonAck).toMatchObject({ ok: false, errorMessage: 'not-found', errorCode: 'TASK_NOT_FOUND' });
  }, 10_000);

  it('redelivers a task whose lease expires while the stream is open, and after the client vanishes', async () => {
    const c = client(s.url);
    const id = (await c.create({ command: 'exp', payload: 1 })).body.id;
    const w1 = await readyWorker();
    w1.send(ready(['exp'], 1, 1));
    await w1.next(is('task'));
    w1.cancel(); // the client vanishes mid-lease: the lease is left to expire
    const w2 = await readyWorker(T.worker2);
    w2.send(ready(['exp'], 1, 1));
    expect(as(await w2.next(is('task'), 5000), 'task').task.task).toMatchObject({ id, attempts: 2, workerId: 'worker-2' });
    // the stream stays open; the lease expires and the task comes to the next Ready
    w2.send(ready(['exp'], 1, 30));
    expect(as(await w2.next(is('task'), 5000), 'task').task.task).toMatchObject({ id, attempts: 3 });
  }, 10_000);

  it('stores progress and log lines sent on the stream, fenced by the lease (issue 17)', async () => {
    const c = client(s.url);
    const id = (await c.create({ command: 'notes', payload: 1 })).body.id;
    const w = await readyWorker();
    w.send(ready(['notes'], 1, 60));
    const t = as(await w.next(is('task')), 'task').task.task!;
    const progress = (json: string, leaseId = t.leaseId) => ({ event: { $case: 'progress' as const, progress: { taskId: id, leaseId, progressJson: Buffer.from(json) } } });
    w.send(progress('{"pct":40}'));
    expect(as(await w.next(is('noteAck')), 'noteAck').noteAck).toMatchObject({ taskId: id, kind: 'progress', ok: true });
    expect((await c.get(id)).body.progress).toEqual({ pct: 40 });
    w.send(progress('"half"'));
    expect(as(await w.next(is('noteAck')), 'noteAck').noteAck).toMatchObject({ kind: 'progress', ok: false, errorCode: 'VALIDATION_FAILED' });
    w.send(progress('50', '00000000-0000-0000-0000-000000000000'));
    expect(as(await w.next(is('noteAck')), 'noteAck').noteAck).toMatchObject({ kind: 'progress', ok: false, errorCode: 'LEASE_NOT_HELD' });
    const at = new Date(Date.now() - 5000);
    w.send({ event: { $case: 'logs', logs: { taskId: id, leaseId: t.leaseId, lines: [{ level: '', message: 'plain', at: undefined }, { level: 'error', message: 'boom', at }] } } });
    expect(as(await w.next(is('noteAck')), 'noteAck').noteAck).toMatchObject({ taskId: id, kind: 'logs', ok: true });
    const lines = (await c.call('GET', `/v1/codeq/tasks/${id}/logs`, { token: T.producer })).body.lines;
    expect(lines.map((l: { level: string; message: string }) => [l.level, l.message])).toEqual([['info', 'plain'], ['error', 'boom']]);
    expect(Date.parse(lines[1].at)).toBe(at.getTime());
    const g = await readyWorker(T.globexWorker);
    g.send({ event: { $case: 'logs', logs: { taskId: id, leaseId: t.leaseId, lines: [{ level: 'info', message: 'foreign', at: undefined }] } } });
    expect(as(await g.next(is('noteAck')), 'noteAck').noteAck).toMatchObject({ kind: 'logs', ok: false, errorCode: 'TASK_NOT_FOUND' });
    expect((await c.get(id)).body.progress).toEqual({ pct: 40 });
  });

  it('keeps tenants apart: foreign tasks are not found and never delivered', async () => {
    const c = client(s.url);
    const id = (await c.create({ command: 'sec', payload: 1 })).body.id;
    const g = await readyWorker(T.globexWorker);
    g.send(result(id));
    expect(as(await g.next(is('resultAck')), 'resultAck').resultAck).toMatchObject({ ok: false, errorMessage: 'task not found' });
    g.send({ event: { $case: 'heartbeat', heartbeat: { taskId: id, extendSeconds: 10, leaseId: '' } } });
    expect(as(await g.next(is('heartbeatAck')), 'heartbeatAck').heartbeatAck).toMatchObject({ ok: false, errorMessage: 'not-found' });
    g.send({ event: { $case: 'nack', nack: { taskId: id, delaySeconds: 0, reason: '', leaseId: '' } } });
    expect(as(await g.next(is('nackAck')), 'nackAck').nackAck).toMatchObject({ ok: false, errorMessage: 'not-found' });
    g.send(ready(['sec']));
    await sleep(300);
    expect(g.queued).toHaveLength(0);
    expect((await c.get(id)).body.status).toBe('PENDING');
  }, 10_000);

  it('answers a ResultBatch with one ResultAckBatch in input order', async () => {
    const c = client(s.url);
    for (let i = 0; i < 3; i++) await c.create({ command: 'rb', payload: i });
    const w = await readyWorker();
    w.send(ready(['rb'], 3));
    const tasks = as(await w.next(is('taskBatch')), 'taskBatch').taskBatch.tasks;
    w.send({
      event: {
        $case: 'resultBatch',
        resultBatch: {
          results: [
            { taskId: tasks[0]!.id, status: 'COMPLETED', resultJson: Buffer.from('{"n":0}'), error: '', leaseId: tasks[0]!.leaseId },
            { taskId: tasks[1]!.id, status: 'FAILED', resultJson: Buffer.alloc(0), error: '', leaseId: '' },
            { taskId: tasks[2]!.id, status: 'FAILED', resultJson: Buffer.alloc(0), error: 'boom', leaseId: '' },
            { taskId: 'nope', status: 'COMPLETED', resultJson: Buffer.from('{}'), error: '', leaseId: '' },
          ],
        },
      },
    });
    const acks = as(await w.next(is('resultAckBatch')), 'resultAckBatch').resultAckBatch.acks;
    expect(acks.map((a) => [a.taskId, a.ok, a.errorMessage])).toEqual([
      [tasks[0]!.id, true, ''],
      [tasks[1]!.id, false, 'error required when status=FAILED'],
      [tasks[2]!.id, true, ''],
      ['nope', false, 'task not found'],
    ]);
    expect((await c.get(tasks[2]!.id)).body).toMatchObject({ status: 'FAILED' });
    w.send({ event: { $case: 'resultBatch', resultBatch: { results: [] } } }); // empty: no ack
    w.send({ event: { $case: 'heartbeat', heartbeat: { taskId: tasks[1]!.id, extendSeconds: 5, leaseId: '' } } });
    expect((await w.next()).event?.$case).toBe('heartbeatAck');
  }, 10_000);

  it('serves 20 concurrent worker streams without duplicate deliveries', async () => {
    const n = 400;
    const workers = await Promise.all(Array.from({ length: 20 }, (_, i) => readyWorker(i % 2 ? T.worker : T.worker2)));
    const seen: string[] = [];
    const loops = workers.map(async (w, i) => {
      const credits = 1 + (i % 3); // mix of Ready counts
      w.send(ready(['many'], credits));
      for (;;) {
        let ev;
        try {
          ev = await w.next((e) => is('task')(e) || is('taskBatch')(e), 1500);
        } catch {
          return;
        }
        const tasks = ev.event?.$case === 'task' ? [ev.event.task.task!] : as(ev, 'taskBatch').taskBatch.tasks;
        expect(tasks.length).toBeLessThanOrEqual(credits);
        for (const t of tasks) seen.push(t.id);
        w.send({ event: { $case: 'resultBatch', resultBatch: { results: tasks.map((t) => ({ taskId: t.id, status: 'COMPLETED', resultJson: Buffer.from('{}'), error: '', leaseId: t.leaseId })) } } });
        const acks = as(await w.next(is('resultAckBatch')), 'resultAckBatch').resultAckBatch.acks;
        expect(acks.every((a) => a.ok)).toBe(true);
        w.send(ready(['many'], credits));
      }
    });
    const producers = await Promise.all([producer(), producer()]);
    await Promise.all(
      producers.map(async (p, k) => {
        for (let b = 0; b < 4; b++) {
          p.send({ event: { $case: 'createBatch', createBatch: { tasks: Array.from({ length: n / 8 }, (_, i) => createTask('many', { k, b, i })) } } });
          expect(as(await p.next(is('createAckBatch')), 'createAckBatch').createAckBatch.acks.every((a) => a.ok)).toBe(true);
        }
      }),
    );
    await Promise.all(loops);
    expect(seen).toHaveLength(n);
    expect(new Set(seen).size).toBe(n);
    expect(await statsOf('many')).toMatchObject({ ready: 0, inProgress: 0 });
  }, 10_000);

  it('keeps reading bounded while a client does not read its acks, and loses nothing', async () => {
    const w = await readyWorker();
    w.pause();
    const n = 3000;
    for (let i = 0; i < n; i++) w.send({ event: { $case: 'heartbeat', heartbeat: { taskId: `t${i}`, extendSeconds: 5, leaseId: '' } } });
    await sleep(300);
    w.resume();
    for (let i = 0; i < n; i++) {
      const a = as(await w.next(is('heartbeatAck')), 'heartbeatAck').heartbeatAck;
      expect(a.ok).toBe(false);
    }
  }, 10_000);
});

describe('producer stream', () => {
  it('validates creates in upstream order, echoes seq, honours idempotency keys', async () => {
    const p = await producer();
    const ackOf = async () => as(await p.next(is('createAck')), 'createAck').createAck;
    p.send(create('  ', 1));
    expect(await ackOf()).toMatchObject({ ok: false, errorMessage: 'command is required', errorCode: 'VALIDATION_FAILED' });
    p.send(create('x', 1, { delaySeconds: -1 }));
    expect(await ackOf()).toMatchObject({ ok: false, errorMessage: 'delaySeconds must be >= 0' });
    p.send(create('x', 1, { webhook: 'ftp://nope' }));
    expect(await ackOf()).toMatchObject({ ok: false, errorMessage: 'invalid webhook url' });
    p.send(create('x', 1, { idempotencyKey: 'k', seq: '18446744073709551615' }));
    const a = await ackOf();
    expect(a).toMatchObject({ ok: true, seq: '18446744073709551615' });
    p.send(create('x', 2, { idempotencyKey: 'k' }));
    expect((await ackOf()).taskId).toBe(a.taskId);
    // another tenant's same key is another task
    const g = await producer(T.globexProducer);
    g.send(create('x', 3, { idempotencyKey: 'k' }));
    expect(as(await g.next(is('createAck')), 'createAck').createAck.taskId).not.toBe(a.taskId);
    // payloads: JSON is normalised like HTTP, other bytes are kept, empty is null; delays are honoured
    p.send(create('x', 0, { payload: Buffer.from('{"b":1, "a":2}') }));
    const norm = await ackOf();
    p.send(create('x', 0, { payload: Buffer.from('not json') }));
    const raw = await ackOf();
    p.send(create('x', 0, { payload: Buffer.alloc(0), delaySeconds: 60 }));
    const delayed = await ackOf();
    const c = client(s.url);
    expect((await c.get(norm.taskId)).body.payload).toBe('{"a":2,"b":1}');
    expect((await c.get(raw.taskId)).body.payload).toBe('not json');
    expect((await c.get(delayed.taskId)).body).toMatchObject({ payload: 'null', status: 'PENDING' });
    expect((await statsOf('x')).delayed).toBe(1);
    p.send({ event: { $case: 'hello', hello: { token: T.producer } } });
    expect(as(await p.next(is('error')), 'error').error).toEqual({ code: 'FailedPrecondition', message: 'already-authenticated' });
    p.send({ event: undefined });
    expect(as(await p.next(is('error')), 'error').error).toEqual({ code: 'InvalidArgument', message: 'unknown-event' });
  }, 10_000);

  it('applies a CreateTaskBatch in order and acks it in one CreateAckBatch', async () => {
    const p = await producer();
    const items = [createTask('bat', { i: 0 }, { idempotencyKey: 'same' }), createTask('', 1), createTask('bat', { i: 2 }, { idempotencyKey: 'same' }), createTask('bat', { i: 3 }, { priority: 9 })];
    p.send({ event: { $case: 'createBatch', createBatch: { tasks: items } } });
    const acks = as(await p.next(is('createAckBatch')), 'createAckBatch').createAckBatch.acks;
    expect(acks.map((a) => [a.seq, a.ok, a.errorMessage])).toEqual([
      [items[0]!.seq, true, ''],
      [items[1]!.seq, false, 'command is required'],
      [items[2]!.seq, true, ''],
      [items[3]!.seq, true, ''],
    ]);
    expect(acks[2]!.taskId).toBe(acks[0]!.taskId); // entry 2 sees entry 0's key
    expect(await statsOf('bat')).toMatchObject({ ready: 2 });
    p.send({ event: { $case: 'createBatch', createBatch: { tasks: [] } } }); // empty: no reply
    p.send(create('bat', 4));
    expect((await p.next()).event?.$case).toBe('createAck');
  }, 10_000);

  it('CreateAck.task (codeQ-TS addition 102) is the stored task, as GET /tasks/:id reports it', async () => {
    const p = await producer();
    const ackOf = async () => as(await p.next(is('createAck')), 'createAck').createAck;
    p.send(create('stored', { b: 1, a: 2 }, { priority: 12, webhook: 'https://hooks.example.com/r', idempotencyKey: 'stored-1' }));
    const a = await ackOf();
    const http = (await client(s.url).get(a.taskId)).body;
    expect(a.task).toEqual({
      id: a.taskId,
      command: 'stored',
      payload: Buffer.from('{"a":2,"b":1}'), // normalised, as stored
      priority: 9, // clamped
      webhook: 'https://hooks.example.com/r',
      maxAttempts: 5, // the server default, applied
      status: 'PENDING',
      lastKnownLocation: 'PENDING_LIST',
      attempts: 0,
      tenantId: 'acme',
      createdAt: http.createdAt,
      updatedAt: http.updatedAt,
      workerId: '',
      leaseUntil: '',
      leaseId: '',
      error: '',
      resultKey: '',
      cancelRequested: false,
    });
    // an idempotent replay acks the existing task in its current state
    const w = await readyWorker();
    w.send(ready(['stored']));
    const claimed = as(await w.next(is('task')), 'task').task.task!;
    p.send(create('stored', { other: true }, { idempotencyKey: 'stored-1' }));
    const replay = await ackOf();
    expect(replay.task).toMatchObject({ id: a.taskId, status: 'IN_PROGRESS', attempts: 1, workerId: 'worker-1', leaseId: claimed.leaseId, leaseUntil: claimed.leaseUntil });
    expect(replay.task!.payload.toString()).toBe('{"a":2,"b":1}');
    // a refused create carries no task; batch acks carry theirs
    p.send(create('  ', 1));
    expect((await ackOf()).task).toBeUndefined();
    p.send({ event: { $case: 'createBatch', createBatch: { tasks: [createTask('stored.b', 1), createTask('', 2)] } } });
    const acks = as(await p.next(is('createAckBatch')), 'createAckBatch').createAckBatch.acks;
    expect(acks[0]!.task).toMatchObject({ id: acks[0]!.taskId, command: 'stored.b', status: 'PENDING' });
    expect(acks[1]!.task).toBeUndefined();
  }, 10_000);

  it('ends with OK after the client half-closes, once in-flight creates are acked', async () => {
    const p = await producer();
    p.send({ event: { $case: 'createBatch', createBatch: { tasks: Array.from({ length: 50 }, (_, i) => createTask('half', i)) } } });
    p.end();
    expect(as(await p.next(is('createAckBatch')), 'createAckBatch').createAckBatch.acks).toHaveLength(50);
    expect(await p.status).toEqual({ code: grpc.status.OK, details: 'OK' });
    const w = await readyWorker();
    w.send(ready(['nothing-here']));
    w.end();
    expect((await w.status).code).toBe(grpc.status.OK); // an outstanding Ready does not hold the stream open
  }, 10_000);
});

describe('listeners and shutdown', () => {
  it('ends open streams with UNAVAILABLE "server shutting down" when the server stops', async () => {
    const w = await readyWorker();
    w.send(ready(['idle']));
    const p = await producer();
    const stopping = s.stop();
    expect(await w.status).toEqual({ code: grpc.status.UNAVAILABLE, details: 'server shutting down' });
    expect(await p.status).toEqual({ code: grpc.status.UNAVAILABLE, details: 'server shutting down' });
    await stopping;
    s = await startServer(); // for afterEach
  }, 10_000);

  it('fails start-up with upstream messages: listen error, missing validator', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-test-'));
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(startServer({ workerStreamAddr: `127.0.0.1:${port}` }, { dir })).rejects.toThrow(new RegExp(`^worker stream gRPC listen 127\\.0\\.0\\.1:${port}: `));
      await expect(startServer({ producerStreamAddr: `127.0.0.1:${port}` }, { dir })).rejects.toThrow(new RegExp(`^producer stream gRPC listen 127\\.0\\.0\\.1:${port}: `));
    } finally {
      blocker.close();
    }
    await expect(startServer({ workerStreamAddr: '127.0.0.1:0', workerAuthProvider: '', workerAuthConfig: '' }, { dir })).rejects.toThrow(/^workerStreamAddr set but no worker validator configured$/);
    await expect(startServer({ producerStreamAddr: '127.0.0.1:0', producerAuthProvider: '', producerAuthConfig: '' }, { dir })).rejects.toThrow(/^producerStreamAddr set but no producer validator configured$/);
    // without addresses nothing listens
    await rm(dir, { recursive: true, force: true });
    const plain = await startServer();
    expect(plain.app.streams).toEqual({ workerPort: 0, producerPort: 0 });
    await plain.stop();
  }, 10_000);
});
