/** What is specific to the worker stream: Ready credits, give-back of unwanted pushes, the transport's calls. */
import { createProducer, type Producer } from '@codeq/sdk-producer';
import { api, serverSuite, startServer, TOKEN, WORKER_SCOPES, waitFor, type TestServer } from '@codeq/testkit';
import { createWorker, GrpcWorkerTransport, type TransportKind, type Worker, type WorkerEvent } from '../src/index.js';

const server = serverSuite();
let producer: Producer;
beforeAll(() => {
  producer = server.atEnd(createProducer({ grpcAddress: server.producerAddress, baseUrl: server.url, token: TOKEN }), (p) => p.close());
});
/** Workers are stopped (deadline 0) after each test. */
const track = (w: Worker): Worker => server.afterEachTest(w, (x) => x.stop({ deadlineMs: 0 }));

const stats = async (command: string) => (await api(server.url, 'GET', `/admin/queues/${command}`)).body as { ready: number; inProgress: number; delayed: number; dlq: number };

describe('worker on the gRPC worker stream', () => {
  it('holds at most `concurrency` tasks: credits follow free slots', async () => {
    const cmd = 'g.credits';
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let running = 0;
    let peak = 0;
    const w = createWorker({
      grpcAddress: server.workerAddress,
      token: TOKEN,
      commands: [cmd],
      concurrency: 3,
      handler: async () => {
        peak = Math.max(peak, ++running);
        await gate;
        running--;
        return {};
      },
    }).start();
    track(w);
    const tasks = await producer.submitMany(Array.from({ length: 10 }, (_, i) => ({ command: cmd, payload: { i } })));
    await waitFor(() => running === 3);
    await new Promise((r) => setTimeout(r, 300)); // nothing more arrives while the slots are busy
    expect(await stats(cmd)).toMatchObject({ inProgress: 3, ready: 7 });
    expect(w.inFlight).toBe(3);
    release();
    await Promise.all(tasks.map((t) => (t.ok ? producer.waitForResult(t.task.id, { timeoutMs: 10_000 }) : Promise.reject(t.error))));
    expect(peak).toBe(3);
    expect(await stats(cmd)).toMatchObject({ inProgress: 0, ready: 0 });
  });

  it('tasks pushed to a draining worker go straight back to the queue', async () => {
    const cmd = 'g.giveback';
    const events: WorkerEvent[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const busy = new Promise<void>((r) => (started = r));
    const w = createWorker({ grpcAddress: server.workerAddress, token: TOKEN, commands: [cmd], concurrency: 4, onEvent: (e) => events.push(e), handler: async () => (started(), await gate, { ok: true }) }).start();
    track(w);
    const first = await producer.submit(cmd, {});
    await busy;
    const stopping = w.stop({ deadlineMs: 10_000 });
    // Three idle slots had Readys outstanding; tasks created now are pushed and given back.
    const later = await Promise.all([1, 2, 3].map((n) => producer.submit(cmd, { n })));
    await new Promise((r) => setTimeout(r, 300));
    expect(await stats(cmd)).toMatchObject({ inProgress: 1, ready: 3 });
    release();
    await stopping;
    expect((await producer.getResult(first.id)).result).toMatchObject({ status: 'COMPLETED' });
    for (const t of later) expect((await producer.get(t.id)).status).toBe('PENDING');
    expect(events.map((e) => e.type)).toEqual(['claimed', 'completed', 'stopped']);
  });

  it('GrpcWorkerTransport: claim, heartbeat, fencing, result, and a bounded wait', async () => {
    const cmd = 'g.transport';
    const t = new GrpcWorkerTransport({ address: `grpc://${server.workerAddress}`, token: TOKEN });
    try {
      expect(await t.connect()).toEqual({ workerId: 'w', tenantId: 'acme' });
      expect(await t.claim({ commands: [cmd], waitSeconds: 1 })).toBeNull();
      const created = await producer.submit(cmd, { x: 1 }, { priority: 4 });
      const task = (await t.claim({ commands: [cmd], leaseSeconds: 30, waitSeconds: 5 }))!;
      expect(task).toMatchObject({ id: created.id, command: cmd, status: 'IN_PROGRESS', payloadJson: { x: 1 }, priority: 4, attempts: 1, workerId: 'w', tenantId: 'acme' });
      expect(task.leaseId).toMatch(/^[0-9a-f-]{36}$/);
      const hb = await t.heartbeat(task.id, { extendSeconds: 120, leaseId: task.leaseId! });
      expect(Date.parse(hb.leaseUntil!)).toBeGreaterThan(Date.now() + 100_000);
      await expect(t.heartbeat(task.id, { leaseId: '00000000-0000-4000-8000-000000000000' })).rejects.toMatchObject({ code: 'LEASE_NOT_HELD', message: 'lease-mismatch' });
      await expect(t.nack('00000000-0000-4000-8000-000000000000', {})).rejects.toMatchObject({ code: 'TASK_NOT_FOUND' });
      const rec = await t.submitResult(task.id, { status: 'COMPLETED', result: { done: true }, leaseId: task.leaseId! });
      expect(rec).toMatchObject({ taskId: task.id, status: 'COMPLETED', result: { done: true } });
      // Repeating a result with the same lease (a retry after a lost ack) is a no-op.
      await expect(t.submitResult(task.id, { status: 'COMPLETED', result: { done: true }, leaseId: task.leaseId! })).resolves.toMatchObject({ status: 'COMPLETED' });
      expect((await producer.getResult(task.id)).result).toMatchObject({ status: 'COMPLETED', result: { done: true } });
      // A worker-role transport: the producer's calls are not forwarded anywhere (issue 11).
      expect((t as unknown as Record<string, unknown>)['getTask']).toBeUndefined();
      expect((t as unknown as Record<string, unknown>)['createTask']).toBeUndefined();
    } finally {
      await t.close();
    }
    await expect(t.claim({ commands: [cmd] })).rejects.toMatchObject({ code: 'UNAVAILABLE', details: { closed: true } });
  });
});

describe('a Ready the server refuses as invalid', () => {
  // The server answers such a Ready with ServerError{InvalidArgument, <reason>} and registers
  // nothing; the worker used to ignore that event and wait forever without an error.
  it.each<[string, { leaseSeconds?: number; commands: string[] }, string]>([
    ['a lease over 7 days', { leaseSeconds: 700_000, commands: ['g.invalid'] }, "invalid 'leaseSeconds' (must be <= 604800)"],
    ['a command over 256 characters', { commands: ['x'.repeat(300)] }, 'invalid command'],
  ])('%s stops the worker with VALIDATION_FAILED, over grpc as over http', async (_name, opts, message) => {
    for (const mode of ['http', 'grpc'] as const) {
      const w = createWorker({ ...(mode === 'grpc' ? { grpcAddress: server.workerAddress } : { baseUrl: server.url }), token: TOKEN, ...opts, handler: () => ({}) }).start();
      track(w);
      await expect(w.done).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message });
    }
  });

  it('GrpcWorkerTransport: every waiting claim rejects and the stream stays usable', async () => {
    const t = new GrpcWorkerTransport({ address: server.workerAddress, token: TOKEN });
    try {
      const bad = { commands: ['g.invalid.t'], leaseSeconds: 700_000 };
      const claims = [t.claim(bad), t.claim(bad)];
      for (const c of claims) await expect(c).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: "invalid 'leaseSeconds' (must be <= 604800)" });
      const created = await producer.submit('g.invalid.t', {});
      const task = await t.claim({ commands: ['g.invalid.t'], leaseSeconds: 30, waitSeconds: 10 });
      expect(task?.id).toBe(created.id);
      await t.submitResult(task!.id, { status: 'COMPLETED', result: {}, leaseId: task!.leaseId! });
    } finally {
      await t.close();
    }
  });
});

describe('a token limited to other commands', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startServer({ env: { WORKER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'w', scopes: WORKER_SCOPES, eventTypes: ['allowed'], raw: { tid: 'acme' } }) } });
  });
  afterAll(async () => {
    await limited?.dispose();
  });

  it.each<TransportKind>(['http', 'grpc'])('over %s stops the worker with FORBIDDEN', async (mode) => {
    const w = createWorker({ ...(mode === 'grpc' ? { grpcAddress: limited.workerAddress } : { baseUrl: limited.url }), token: TOKEN, commands: ['not.allowed'], handler: () => ({}) }).start();
    await expect(w.done).rejects.toMatchObject({ code: 'FORBIDDEN', message: 'event type not allowed' });
  });
});

describe('a token without the result scope', () => {
  let claimOnly: TestServer;
  let p: Producer;
  beforeAll(async () => {
    claimOnly = await startServer({ env: { WORKER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'w', scopes: ['codeq:claim'], eventTypes: ['*'], raw: { tid: 'acme' } }) } });
    p = createProducer({ baseUrl: claimOnly.url, token: TOKEN });
  });
  afterAll(async () => {
    await p?.close();
    await claimOnly?.dispose();
  });

  // The worker stream refuses the Result with ServerError{PermissionDenied, "missing scope"}; HTTP
  // answers 403 FORBIDDEN. Both stop the worker instead of claiming tasks it can never finish.
  it.each<TransportKind>(['http', 'grpc'])('over %s stops the worker with FORBIDDEN missing scope once a result is refused', async (mode) => {
    const cmd = `g.noscope.${mode}`;
    await p.submit(cmd, {});
    const w = createWorker({ ...(mode === 'grpc' ? { grpcAddress: claimOnly.workerAddress } : { baseUrl: claimOnly.url }), token: TOKEN, commands: [cmd], heartbeat: false, handler: () => ({ ok: true }) }).start();
    track(w);
    await expect(w.done).rejects.toMatchObject({ code: 'FORBIDDEN', message: 'missing scope' });
  });
});
