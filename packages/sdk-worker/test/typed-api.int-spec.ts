/**
 * The typed API end to end against the real server, over HTTP and over the gRPC streams:
 * submit() handles (the stored task, result() resolving or throwing TaskFailedError /
 * TaskCancelledError), handler maps, worker.on() events and Standard Schema validation (zod).
 */
import { CodeqError, createProducer, TaskFailedError, TaskCancelledError as ProducerTaskCancelledError, type Producer } from '@codeq/sdk-producer';
import { z } from 'zod';
import { createWorker, TaskCancelledError, type TransportKind, type Worker, type WorkerEventMap, type WorkerOptions } from '../src/index.js';
import { startServer, TOKEN, waitFor, type TestServer } from '@codeq/testkit';

let server: TestServer;
const workers: Worker[] = [];
const producers: Producer[] = [];

beforeAll(async () => {
  server = await startServer();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop({ deadlineMs: 0 })));
});
afterAll(async () => {
  await Promise.all(producers.splice(0).map((p) => p.close()));
  await server?.dispose();
});

/** Thrown value of a promise expected to reject. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** Every SDK entry point refuses ill-formed handler options the same way, whatever the wire. */
describe('worker handler options', () => {
  const base = { baseUrl: 'http://127.0.0.1:1', token: TOKEN };
  it('takes exactly one of handler and handlers', () => {
    const both = { ...base, commands: ['a'], handler: () => ({}), handlers: { a: () => ({}) } } as unknown as WorkerOptions;
    expect(() => createWorker(both)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: 'give exactly one of handler and handlers' }));
    const none = { ...base, commands: ['a'] } as unknown as WorkerOptions;
    expect(() => createWorker(none)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => createWorker({ ...base, handlers: {} })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: 'commands: at least one command is required' }));
    const notFn = { ...base, handlers: { a: 'nope' } } as unknown as WorkerOptions;
    expect(() => createWorker(notFn)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: "handlers['a'] must be a function" }));
    const badSchema = { ...base, handlers: { a: () => ({}) }, schemas: { a: { parse: () => 1 } } } as unknown as WorkerOptions;
    expect(() => createWorker(badSchema)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => createProducer({ ...base, schemas: { a: {} as never } })).toThrow(TypeError);
  });

  it('claims the commands of the map when commands is omitted', () => {
    const w = createWorker({ ...base, handlers: { 'm.one': () => ({}), 'm.two': () => ({}) } });
    expect(w.commands).toEqual(['m.one', 'm.two']);
    const map = { 'm.one': () => ({}), 'm.two': () => ({}) };
    expect(createWorker({ ...base, commands: ['m.two'], handlers: map }).commands).toEqual(['m.two']);
  });
});

describe.each<TransportKind>(['http', 'grpc'])('typed API over %s', (mode) => {
  const cmd = (name: string) => `${mode}.${name}`;
  let producer: Producer;

  const producerTarget = () => (mode === 'grpc' ? { grpcAddress: server.producerAddress, baseUrl: server.url, token: TOKEN } : { baseUrl: server.url, token: TOKEN });
  const workerTarget = () => (mode === 'grpc' ? { grpcAddress: server.workerAddress, token: TOKEN } : { baseUrl: server.url, token: TOKEN });
  function worker(opts: Omit<WorkerOptions, 'baseUrl' | 'token' | 'transport' | 'grpcAddress'>): Worker {
    const w = createWorker({ ...workerTarget(), waitSeconds: 1, ...opts });
    workers.push(w);
    return w;
  }
  beforeAll(() => {
    producer = createProducer({ ...producerTarget(), retry: { maxAttempts: 3, initialMs: 20 } });
    producers.push(producer);
  });

  it('submit() resolves a handle holding the stored task (CreateAck.task over gRPC)', async () => {
    const h = await producer.submit(cmd('h.stored'), { to: 'a@example.com' }, { priority: 4, webhook: 'http://hooks.local/x' });
    const stored = await producer.get(h.id);
    // Every field the server stored, including the server default for maxAttempts (5), not 0.
    expect(h.maxAttempts).toBe(5);
    expect(h.task).toEqual(stored);
    expect({ ...h }).toEqual(stored); // the handle's own fields are the task; methods are not own properties
    expect(JSON.parse(JSON.stringify(h))).toEqual(JSON.parse(JSON.stringify(stored)));
    expect(h).toMatchObject({ status: 'PENDING', lastKnownLocation: 'PENDING_LIST', priority: 4, tenantId: 'acme', data: { to: 'a@example.com' }, payloadJson: { to: 'a@example.com' } });
    expect(h.createdAt).toBe(stored.createdAt);
    expect(await h.get()).toEqual(stored);
  });

  it('an idempotent replay returns the existing task in its current state', async () => {
    const first = await producer.submit(cmd('h.replay'), { n: 1 }, { idempotencyKey: `${mode}-replay-1` });
    worker({ handlers: { [cmd('h.replay')]: () => ({ ok: true }) } }).start();
    expect(await first.result({ timeoutMs: 20_000 })).toEqual({ ok: true });
    const again = await producer.submit(cmd('h.replay'), { n: 2 }, { idempotencyKey: `${mode}-replay-1` });
    expect(again.id).toBe(first.id);
    expect(again.status).toBe('COMPLETED'); // the stored task, not the submitted values
    expect(again.data).toEqual({ n: 1 });
    expect(await again.result()).toEqual({ ok: true });
  });

  it('result() resolves the handler result; handler maps get the parsed payload and ctx.task', async () => {
    const seen: unknown[] = [];
    worker({
      handlers: {
        [cmd('m.email')]: async (data, ctx) => {
          seen.push({ data, command: ctx.task.command, id: ctx.task.id, attempt: ctx.attempt });
          return { sent: (data as { to: string }).to };
        },
        [cmd('m.report')]: (data) => ({ month: (data as { month: number }).month }),
      },
      concurrency: 2,
    }).start();
    const a = await producer.submit(cmd('m.email'), { to: 'b@example.com' });
    const b = await producer.submit(cmd('m.report'), { month: 5 });
    expect(await a.result({ timeoutMs: 20_000 })).toEqual({ sent: 'b@example.com' });
    expect(await b.result({ timeoutMs: 20_000 })).toEqual({ month: 5 });
    expect(seen).toEqual([{ data: { to: 'b@example.com' }, command: cmd('m.email'), id: a.id, attempt: 1 }]);
    const { task, result } = await a.wait();
    expect(task.status).toBe('COMPLETED');
    expect(result.status).toBe('COMPLETED');
  });

  it('a worker with a map claims only the commands of the map', async () => {
    const other = await producer.submit(cmd('m.other'), {});
    const w = worker({ handlers: { [cmd('m.mine')]: () => ({ mine: true }) } }).start();
    expect(w.commands).toEqual([cmd('m.mine')]);
    const mine = await producer.submit(cmd('m.mine'), {});
    expect(await mine.result({ timeoutMs: 20_000 })).toEqual({ mine: true });
    const still = await producer.get(other.id);
    expect(still).toMatchObject({ status: 'PENDING', attempts: 0 });
  });

  it('a claimed task whose command has no handler in the map ends FAILED with a clear error', async () => {
    worker({ commands: [cmd('m.has'), cmd('m.missing')], handlers: { [cmd('m.has')]: () => ({}) } }).start();
    const h = await producer.submit(cmd('m.missing'), { x: 1 });
    const e = await rejection(h.result({ timeoutMs: 20_000 }));
    expect(e).toBeInstanceOf(TaskFailedError);
    expect((e as TaskFailedError).reason).toBe(`no handler for command '${cmd('m.missing')}' in this worker's handlers (${cmd('m.has')})`);
    expect((e as TaskFailedError).task).toMatchObject({ id: h.id, status: 'FAILED', attempts: 1 });
  });

  it('result() throws TaskFailedError for a failed task (ctx.fail and dead-lettered)', async () => {
    worker({
      handlers: {
        [cmd('f.fail')]: (_d, ctx) => ctx.fail('bad address'),
        [cmd('f.throw')]: () => {
          throw new Error('always broken');
        },
      },
    }).start();
    const h = await producer.submit(cmd('f.fail'), {});
    const e = await rejection(h.result({ timeoutMs: 20_000 }));
    expect(e).toBeInstanceOf(TaskFailedError);
    expect(e).toMatchObject({ name: 'TaskFailedError', taskId: h.id, reason: 'bad address', message: `task ${h.id} failed: bad address`, record: { status: 'FAILED', error: 'bad address' } });
    const dlq = await producer.submit(cmd('f.throw'), {}, { maxAttempts: 1 });
    const e2 = await rejection(dlq.result({ timeoutMs: 20_000 }));
    expect(e2).toBeInstanceOf(TaskFailedError);
    expect((e2 as TaskFailedError).task).toMatchObject({ status: 'FAILED' });
  });

  it('result() throws TaskCancelledError for a cancelled task (one class in both SDKs)', async () => {
    const h = await producer.submit(cmd('c.later'), {}, { delaySeconds: 3600 });
    const cancelled = await h.cancel();
    expect(cancelled.status).toBe('CANCELLED');
    const e = await rejection(h.result({ timeoutMs: 10_000 }));
    expect(e).toBeInstanceOf(ProducerTaskCancelledError);
    expect(e).toBeInstanceOf(TaskCancelledError);
    expect(e).toMatchObject({ taskId: h.id, task: { status: 'CANCELLED' }, record: { status: 'CANCELLED' } });
  });

  it('result() gives up after timeoutMs with RESULT_NOT_FOUND', async () => {
    const h = await producer.submit(cmd('t.nobody'), {});
    const e = await rejection(h.result({ timeoutMs: 1500 }));
    expect(CodeqError.is(e) && e.code).toBe('RESULT_NOT_FOUND');
    expect((e as CodeqError).details).toMatchObject({ timedOut: true });
  });

  it('worker.on() delivers typed events; throwing listeners never break the worker', async () => {
    const got: Record<string, Array<{ taskId?: string; deadLettered?: boolean; status?: string }>> = {};
    const push = (k: string) => (e: WorkerEventMap[keyof WorkerEventMap]) => void (got[k] ??= []).push(e as never);
    const onEvent: string[] = [];
    const w = worker({
      onEvent: (e) => onEvent.push(e.type),
      handlers: {
        [cmd('e.ok')]: () => ({ ok: 1 }),
        [cmd('e.flaky')]: (_d, ctx) => (ctx.attempt === 1 ? ctx.retry({ delaySeconds: 1, reason: 'first try' }) : { ok: 2 }),
        [cmd('e.fail')]: (_d, ctx) => ctx.fail('no'),
        [cmd('e.dlq')]: () => {
          throw new Error('boom');
        },
      },
      concurrency: 2,
    });
    let onceCalls = 0;
    let removedCalls = 0;
    const once = () => void onceCalls++;
    const removed = () => void removedCalls++;
    w.on('completed', () => {
      throw new Error('listener bug');
    })
      .on('completed', async () => {
        throw new Error('async listener bug');
      })
      .on('completed', push('completed'))
      .on('failed', push('failed'))
      .on('retrying', push('retrying'))
      .on('nacked', push('nacked'))
      .once('claimed', once)
      .on('claimed', removed)
      .off('claimed', removed)
      .start();
    const ok = await producer.submit(cmd('e.ok'), {});
    const flaky = await producer.submit(cmd('e.flaky'), {});
    const failing = await producer.submit(cmd('e.fail'), {});
    const dlq = await producer.submit(cmd('e.dlq'), {}, { maxAttempts: 1 });
    expect(await ok.result({ timeoutMs: 20_000 })).toEqual({ ok: 1 });
    expect(await flaky.result({ timeoutMs: 20_000 })).toEqual({ ok: 2 });
    await rejection(failing.result({ timeoutMs: 20_000 }));
    await rejection(dlq.result({ timeoutMs: 20_000 }));
    await waitFor(() => (got['completed']?.length ?? 0) === 2 && (got['failed']?.length ?? 0) === 2, 10_000, 'events');
    expect(got['completed']!.map((e) => e.taskId).sort()).toEqual([ok.id, flaky.id].sort());
    expect(got['retrying']).toEqual([expect.objectContaining({ type: 'nacked', taskId: flaky.id, status: 'requeued', reason: 'first try' })]);
    expect(got['failed']).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'failed', taskId: failing.id, error: 'no' }),
        expect.objectContaining({ type: 'failed', taskId: dlq.id, error: 'boom', deadLettered: true }),
      ]),
    );
    expect(got['nacked']!.map((e) => e.status).sort()).toEqual(['dlq', 'requeued']);
    expect(onceCalls).toBe(1);
    expect(removedCalls).toBe(0);
    expect(onEvent.filter((t) => t === 'completed')).toHaveLength(2); // onEvent still runs alongside
    expect(w.state).toBe('running');
  });

  it('producer schemas reject invalid payloads before sending and send the parsed output', async () => {
    const schemas = { [cmd('s.email')]: z.object({ to: z.email(), subject: z.string().default('hello') }) };
    const p = createProducer({ ...producerTarget(), schemas });
    producers.push(p);
    const e = await rejection(p.submit(cmd('s.email'), { to: 'not-an-email' }));
    expect(CodeqError.is(e) && e.code).toBe('VALIDATION_FAILED');
    expect((e as CodeqError).message).toMatch(new RegExp(`^payload of '${cmd('s.email')}' failed validation: to: `));
    expect((e as CodeqError).details['issues']).toEqual([expect.objectContaining({ path: ['to'] })]);
    const h = await p.submit(cmd('s.email'), { to: 'a@example.com' });
    expect(h.data).toEqual({ to: 'a@example.com', subject: 'hello' }); // the schema's output was sent
    const many = await p.submitMany([
      { command: cmd('s.email'), payload: { to: 'x' } },
      { command: cmd('s.email'), payload: { to: 'c@example.com' } },
      { command: cmd('s.free'), payload: 42 },
    ]);
    expect(many.map((r) => r.ok)).toEqual([false, true, true]);
    expect(many[0]).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    // Nothing invalid reached the server: only the two valid s.email tasks exist.
    const page = await producer.listPage({ command: cmd('s.email') });
    expect(page.tasks.map((t) => t.data).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
      { subject: 'hello', to: 'a@example.com' },
      { subject: 'hello', to: 'c@example.com' },
    ]);
  });

  it('worker schemas fail invalid payloads without retry and hand the parsed output to the handler', async () => {
    const calls: unknown[] = [];
    worker({
      schemas: { [cmd('v.count')]: z.object({ n: z.coerce.number().int() }) },
      handlers: { [cmd('v.count')]: (data) => (calls.push(data), { double: (data as { n: number }).n * 2 }) },
    }).start();
    const good = await producer.submit(cmd('v.count'), { n: '21' });
    expect(await good.result({ timeoutMs: 20_000 })).toEqual({ double: 42 });
    expect(calls).toEqual([{ n: 21 }]);
    const bad = await producer.submit(cmd('v.count'), { n: 'many' }, { maxAttempts: 5 });
    const e = await rejection(bad.result({ timeoutMs: 20_000 }));
    expect(e).toBeInstanceOf(TaskFailedError);
    expect((e as TaskFailedError).reason).toMatch(new RegExp(`^VALIDATION_FAILED: payload of '${cmd('v.count')}' failed validation: n: .*\\[\\{"path":\\["n"\\],"message":`));
    expect((e as TaskFailedError).task).toMatchObject({ status: 'FAILED', attempts: 1 }); // not retried
    expect(calls).toHaveLength(1); // the handler never saw it
  });
});
