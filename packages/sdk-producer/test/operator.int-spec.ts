/**
 * The operator API through the producer SDK (issue 14), over HTTP and with the gRPC producer
 * transport (whose operator calls go to its HTTP fallback): list (async iterator over pages),
 * listPage, cancel (waiters finish CANCELLED), admin pause/resume/queues, dlq list/redrive.
 */
import { createProducer, CodeqError, type Producer } from '../src/index.js';
import { api, serverSuite, TOKEN } from '@codeq/testkit';

const server = serverSuite();

/** Claim one task of `command` over raw HTTP and dead-letter it (maxAttempts 1). */
async function deadLetter(producer: Producer, command: string, reason: string): Promise<string> {
  const t = await producer.submit(command, { reason }, { maxAttempts: 1 });
  const c = await api(server.url, 'POST', '/tasks/claim', { commands: [command] });
  expect(c.body.id).toBe(t.id);
  expect((await api(server.url, 'POST', `/tasks/${t.id}/nack`, { reason })).body.status).toBe('dlq');
  return t.id;
}

describe.each(['http', 'grpc'] as const)('operator API through the producer SDK over %s', (mode) => {
  let producer: Producer;
  beforeAll(() => {
    producer = createProducer(mode === 'grpc' ? { grpcAddress: server.producerAddress, baseUrl: server.url, token: TOKEN } : { baseUrl: server.url, token: TOKEN });
  });
  afterAll(async () => {
    await producer?.close();
  });
  const cmd = (n: string) => `${mode}.op.${n}`;

  it('list() iterates every page newest first; listPage() gives one page and a cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await producer.submit(cmd('list'), { i })).id);
    const seen: string[] = [];
    for await (const t of producer.list({ command: cmd('list'), limit: 3 })) seen.push(t.id);
    expect(seen.sort()).toEqual([...ids].sort());
    const p1 = await producer.listPage({ command: cmd('list'), limit: 5, status: ['PENDING', 'DELAYED'] });
    expect(p1.tasks).toHaveLength(5);
    expect(p1.tasks[0]).toMatchObject({ command: cmd('list'), status: 'PENDING', attempts: 0 });
    expect(p1.nextCursor).toEqual(expect.any(String));
    const p2 = await producer.listPage({ command: cmd('list'), limit: 5, cursor: p1.nextCursor! });
    expect(p2.tasks).toHaveLength(2);
    expect(p2.nextCursor).toBeNull();
    expect((await producer.listPage({ command: cmd('list'), createdAfter: new Date(Date.now() + 60_000) })).tasks).toEqual([]);
    await expect(producer.listPage({ limit: 0 })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('cancel(): a pending task ends CANCELLED and waitForResult finishes with status CANCELLED; finished tasks reject', async () => {
    const t = await producer.submit(cmd('cancel'), {});
    const waiting = producer.waitForResult(t.id, { timeoutMs: 20_000 });
    const c = await producer.cancel(t.id);
    expect(c.status).toBe('CANCELLED');
    const r = await waiting;
    expect(r.result.status).toBe('CANCELLED');
    expect((await producer.cancel(t.id)).status).toBe('CANCELLED');
    const running = await producer.submit(cmd('cancel2'), {});
    await api(server.url, 'POST', '/tasks/claim', { commands: [cmd('cancel2')] });
    expect(await producer.cancel(running.id)).toMatchObject({ status: 'IN_PROGRESS', cancelRequested: true });
    const done = await producer.submit(cmd('cancel3'), {});
    await api(server.url, 'POST', '/tasks/claim', { commands: [cmd('cancel3')] });
    await api(server.url, 'POST', `/tasks/${done.id}/result`, { status: 'COMPLETED', result: {} });
    const err = await producer.cancel(done.id).catch((e: unknown) => e);
    expect(CodeqError.is(err) && err.code).toBe('TASK_FINISHED');
    await expect(producer.cancel('missing')).rejects.toMatchObject({ code: 'TASK_NOT_FOUND' });
  });

  it('admin: pause/resume, queues() rows, dlq.list and dlq.redrive', async () => {
    expect(await producer.admin.pause(cmd('Paused'))).toEqual({ command: cmd('Paused'), paused: true });
    await producer.submit(cmd('Paused'), {});
    expect((await api(server.url, 'POST', '/tasks/claim', { commands: [cmd('Paused')] })).status).toBe(204);
    const rows = await producer.admin.queues();
    expect(rows.find((r) => r.command === cmd('Paused'))).toEqual({ command: cmd('Paused'), ready: 1, delayed: 0, inProgress: 0, dlq: 0, paused: true });
    expect(await producer.admin.resume(cmd('Paused'))).toEqual({ command: cmd('Paused'), paused: false });
    expect((await api(server.url, 'POST', '/tasks/claim', { commands: [cmd('Paused')] })).status).toBe(200);

    const a = await deadLetter(producer, cmd('Dead'), 'bad a');
    const b = await deadLetter(producer, cmd('Dead'), 'bad b');
    const page = await producer.admin.dlq.list({ command: cmd('Dead') });
    expect(page.tasks.map((t) => t.id)).toEqual([b, a]);
    expect(page.tasks[0]).toMatchObject({ status: 'FAILED', lastError: 'bad b', attempts: 1 });
    expect((await producer.admin.queues()).find((r) => r.command === cmd('Dead'))?.dlq).toBe(2);
    expect(await producer.admin.dlq.redrive({ ids: [a] })).toEqual({ redriven: 1, ids: [a] });
    expect(await producer.admin.dlq.redrive({ ids: [a] })).toEqual({ redriven: 0, ids: [] });
    expect(await producer.admin.dlq.redrive({ command: cmd('Dead'), limit: 10 })).toEqual({ redriven: 1, ids: [b] });
    expect((await producer.get(a)).status).toBe('PENDING');
    await expect(producer.admin.dlq.redrive({ command: cmd('Dead'), limit: 5000 })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});

it('the gRPC producer without baseUrl says the operator API needs it', async () => {
  const p = createProducer({ grpcAddress: server.producerAddress, token: TOKEN, retry: false });
  try {
    await expect(p.listPage()).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(p.admin.queues()).rejects.toThrow(/baseUrl/);
  } finally {
    await p.close();
  }
});
