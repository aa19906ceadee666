/**
 * Issue 12 items 3 and 4: one caller's bad input is a 4xx for that caller only, decided before any
 * side effect — NUL and control characters in stored text (webhook URLs, idempotency keys, error
 * texts, non-JSON stream payloads), JSON nested deeper than 64 levels, and batches whose items are
 * each applied whole or not at all. Runs on both engines (PostgreSQL refuses NUL in text, so there
 * one such row used to fail the multi-row INSERT of every caller of that turn).
 */
import { client, sleep, startServer, T, type RunningServer } from './harness.js';
import { as, is, producerStream, workerStream } from './grpc-clients.js';

let s: RunningServer;

const deep = (n: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = [v];
  return v;
};

async function count(command: string): Promise<number> {
  const r = await client(s.url).call('GET', `/v1/codeq/admin/queues/${command}`, { token: T.producer });
  expect(r.status).toBe(200);
  return r.body.ready + r.body.delayed + r.body.inProgress + r.body.dlq;
}

describe('input safety (issue 12 items 3, 4)', () => {
  beforeAll(async () => {
    s = await startServer({ workerStreamAddr: '127.0.0.1:0', producerStreamAddr: '127.0.0.1:0' });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('a NUL or control character in a webhook URL or idempotency key is a 400; the other callers of that turn succeed', async () => {
    const c = client(s.url);
    const [bad1, good, bad2, bad3] = await Promise.all([
      c.create({ command: 'nul', payload: {}, webhook: 'http://example.com/\u0000x' }),
      c.create({ command: 'nul', payload: { ok: 1 } }),
      c.create({ command: 'nul', payload: {}, webhook: 'http://example.com/a\u0007b' }),
      c.create({ command: 'nul', payload: {}, idempotencyKey: 'k\u0000' }),
    ]);
    expect([bad1.status, bad2.status, bad3.status]).toEqual([400, 400, 400]);
    expect(bad1.body.code).toBe('VALIDATION_FAILED');
    expect(good.status).toBe(202);
    expect(await count('nul')).toBe(1);
  });

  it('a NUL in a nack reason or a result error is a 400 and changes nothing', async () => {
    const c = client(s.url);
    const t = await c.create({ command: 'nulw', payload: {} });
    expect(t.status).toBe(202);
    const claimed = await c.claim({ commands: ['nulw'] });
    expect(claimed.status).toBe(200);
    const n = await c.nack(t.body.id, { reason: 'bad\u0000reason' });
    expect(n.status).toBe(400);
    const r = await c.result(t.body.id, { status: 'FAILED', error: 'boom\u0000' });
    expect(r.status).toBe(400);
    const got = await c.get(t.body.id);
    expect(got.body.status).toBe('IN_PROGRESS');
    expect(got.body.attempts).toBe(1);
    expect((await c.result(t.body.id, { status: 'FAILED', error: 'boom\nwith a stack trace\tok' })).status).toBe(200);
  });

  it('JSON nested deeper than 64 levels is a 400 before any side effect (single, batch, result)', async () => {
    const c = client(s.url);
    expect((await c.create({ command: 'deep', payload: deep(60) })).status).toBe(202);
    for (const n of [70, 5_000, 200_000]) {
      const raw = `{"command":"deep","payload":${'['.repeat(n)}${']'.repeat(n)}}`;
      const r = await c.call('POST', '/v1/codeq/tasks', { token: T.producer, raw, headers: { 'content-type': 'application/json' } });
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
    }
    // A batch whose item 1 is too deep creates nothing, not item 0 behind a 500.
    const raw = `{"tasks":[{"command":"deep","payload":{"i":0}},{"command":"deep","payload":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`;
    const b = await c.call('POST', '/v1/codeq/tasks/batch', { token: T.producer, raw, headers: { 'content-type': 'application/json' } });
    expect(b.status).toBe(400);
    expect(await count('deep')).toBe(1);
    const t = await c.claim({ commands: ['deep'] });
    const deepResult = `{"status":"COMPLETED","result":{"x":${'['.repeat(1000)}${']'.repeat(1000)}}}`;
    const rr = await c.call('POST', `/v1/codeq/tasks/${t.body.id}/result`, { token: T.worker, raw: deepResult, headers: { 'content-type': 'application/json' } });
    expect(rr.status).toBe(400);
    expect((await c.get(t.body.id)).body.status).toBe('IN_PROGRESS');
  });

  it('batch items are all-or-nothing each: invalid items are reported, valid ones applied', async () => {
    const c = client(s.url);
    const b = await c.call('POST', '/v1/codeq/tasks/batch', {
      token: T.producer,
      body: { tasks: [{ command: 'bat', payload: { i: 0 } }, { command: 'bat', payload: {}, webhook: 'http://x/\u0000' }, { command: 'bat', payload: { i: 2 } }] },
    });
    expect(b.status).toBe(200);
    expect(b.body.results[0].task.id).toBeDefined();
    expect(b.body.results[1].error).toMatch(/webhook/);
    expect(b.body.results[2].task.id).toBeDefined();
    expect(await count('bat')).toBe(2);
  });

  it('gRPC: a NUL in a non-JSON payload, a key or a webhook fails that entry only; deep JSON is refused', async () => {
    const p = producerStream(s.app.streams.producerPort);
    try {
      p.send({ event: { $case: 'hello', hello: { token: T.producer } } });
      await p.next(is('helloAck'));
      const base = { command: 'gnul', priority: 0, webhook: '', maxAttempts: 0, idempotencyKey: '', delaySeconds: 0, traceParent: '', traceState: '' };
      const tasks = [
        { ...base, seq: '1', payload: Buffer.from('not json \u0000 here') },
        { ...base, seq: '2', payload: Buffer.from('{"ok":true}') },
        { ...base, seq: '3', payload: Buffer.from('{}'), idempotencyKey: 'k\u0001' },
        { ...base, seq: '4', payload: Buffer.from('{}'), webhook: 'http://example.com/\u0000' },
        { ...base, seq: '5', payload: Buffer.from(`{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}`) },
        { ...base, seq: '6', payload: Buffer.from('plain text payload') },
      ];
      p.send({ event: { $case: 'createBatch', createBatch: { tasks } } });
      const acks = as(await p.next(is('createAckBatch'), 15_000), 'createAckBatch').createAckBatch.acks;
      expect(acks.map((a) => [a.seq, a.ok, a.errorCode])).toEqual([
        ['1', false, 'VALIDATION_FAILED'],
        ['2', true, ''],
        ['3', false, 'VALIDATION_FAILED'],
        ['4', false, 'VALIDATION_FAILED'],
        ['5', false, 'VALIDATION_FAILED'],
        ['6', true, ''],
      ]);
      expect(await count('gnul')).toBe(2);
    } finally {
      p.close();
    }
  });

  it('gRPC: a NUL in a result error or nack reason is refused; the task is unchanged', async () => {
    const c = client(s.url);
    const t = await c.create({ command: 'gnulw', payload: {} });
    const w = workerStream(s.app.streams.workerPort);
    try {
      w.send({ event: { $case: 'hello', hello: { token: T.worker, workerId: '' } } });
      await w.next(is('helloAck'));
      w.send({ event: { $case: 'ready', ready: { commands: ['gnulw'], leaseSeconds: 60, count: 1 } } });
      const task = as(await w.next(is('task')), 'task').task.task!;
      expect(task.id).toBe(t.body.id);
      w.send({ event: { $case: 'result', result: { taskId: task.id, status: 'FAILED', resultJson: Buffer.from(''), error: 'x\u0000y', leaseId: task.leaseId } } });
      const ack = as(await w.next(is('resultAck')), 'resultAck').resultAck;
      expect([ack.ok, ack.errorCode]).toEqual([false, 'VALIDATION_FAILED']);
      w.send({ event: { $case: 'nack', nack: { taskId: task.id, delaySeconds: 0, reason: 'r\u0000', leaseId: task.leaseId } } });
      const nack = as(await w.next(is('nackAck')), 'nackAck').nackAck;
      expect([nack.ok, nack.errorCode]).toEqual([false, 'VALIDATION_FAILED']);
      await sleep(50);
      const got = await c.get(task.id);
      expect([got.body.status, got.body.attempts]).toEqual(['IN_PROGRESS', 1]);
    } finally {
      w.close();
    }
  });
});
