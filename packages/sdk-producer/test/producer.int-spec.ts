import { createProducer, CodeqError, type Producer } from '../src/index.js';
import { api, serverSuite, TOKEN } from '@codeq/testkit';

const server = serverSuite();
let producer: Producer;

beforeAll(() => {
  producer = server.atEnd(createProducer({ baseUrl: server.url, token: TOKEN, retry: { maxAttempts: 3, initialMs: 20 } }), (p) => p.close());
});

describe('producer against the real server', () => {
  it('submits a task and reads it back with the payload parsed', async () => {
    const t = await producer.submit('email.send', { to: 'a@example.com', n: [1, 2] }, { priority: 7, maxAttempts: 3 });
    expect(t).toMatchObject({ command: 'email.send', status: 'PENDING', priority: 7, maxAttempts: 3, attempts: 0, tenantId: 'acme' });
    expect(t.payload).toBe('{"n":[1,2],"to":"a@example.com"}');
    expect(t.payloadJson).toEqual({ to: 'a@example.com', n: [1, 2] });
    const again = await producer.get(t.id);
    expect(again).toEqual(t);
  });

  it('schedules with delaySeconds and runAt', async () => {
    const delayed = await producer.submit('later', 1, { delaySeconds: 60 });
    expect(delayed.lastKnownLocation).toBe('DELAYED_ZSET');
    const at = await producer.submit('later', 'x', { runAt: new Date(Date.now() + 3_600_000) });
    expect(at.lastKnownLocation).toBe('DELAYED_ZSET');
    const past = await producer.submit('later', {}, { runAt: '2000-01-01T00:00:00Z' });
    expect(past.lastKnownLocation).toBe('PENDING_LIST');
  });

  it('deduplicates on the idempotency key', async () => {
    const a = await producer.submit('dedupe', { v: 1 }, { idempotencyKey: 'key-1' });
    const b = await producer.submit('dedupe', { v: 1 }, { idempotencyKey: 'key-1' });
    expect(b.id).toBe(a.id);
    expect((await api(server.url, 'GET', '/admin/queues/dedupe')).body).toMatchObject({ ready: 1 });
  });

  it('submits many through the batch route, reporting per-item errors in order', async () => {
    const items = Array.from({ length: 120 }, (_, i) => ({ command: i === 5 ? '   ' : 'bulk', payload: { i } }));
    const out = await producer.submitMany(items);
    expect(out).toHaveLength(120);
    expect(out[5]).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED', message: 'invalid command' } });
    expect(out.filter((r) => r.ok)).toHaveLength(119);
    expect(out[119]).toMatchObject({ ok: true, task: { command: 'bulk', payloadJson: { i: 119 } } });
    expect((await api(server.url, 'GET', '/admin/queues/bulk')).body).toMatchObject({ ready: 119 });
    // Each item is a handle, like submit()'s: result() waits for that task's outcome.
    const claimed = await api(server.url, 'POST', '/tasks/claim', { commands: ['bulk'] });
    const first = out.find((r) => r.ok && r.task.id === claimed.body.id);
    if (!first?.ok) throw new Error(`claimed ${String(claimed.body.id)}, which submitMany did not return`);
    await api(server.url, 'POST', `/tasks/${first.task.id}/result`, { status: 'COMPLETED', result: { n: 0 }, leaseId: claimed.body.leaseId });
    await expect(first.task.result({ timeoutMs: 10_000 })).resolves.toEqual({ n: 0 });
  });

  it('waits for a result submitted by a worker', async () => {
    const t = await producer.submit('wait.me', { x: 1 });
    const waiting = producer.waitForResult(t.id, { timeoutMs: 10_000 });
    const claimed = await api(server.url, 'POST', '/tasks/claim', { commands: ['wait.me'] });
    expect(claimed.status).toBe(200);
    await api(server.url, 'POST', `/tasks/${t.id}/result`, { status: 'COMPLETED', result: { done: true }, leaseId: claimed.body.leaseId });
    const r = await waiting;
    expect(r.result).toMatchObject({ taskId: t.id, status: 'COMPLETED', result: { done: true } });
    expect(r.task.status).toBe('COMPLETED');
  });

  it('times out waiting for a result that never comes', async () => {
    const t = await producer.submit('never', {});
    const started = Date.now();
    await expect(producer.waitForResult(t.id, { timeoutMs: 1200 })).rejects.toMatchObject({ code: 'RESULT_NOT_FOUND', details: { timedOut: true } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1100);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('throws CodeqErrors with upstream messages, our codes and httpStatus', async () => {
    const nf = await producer.get('00000000-0000-4000-8000-000000000000').catch((e: unknown) => e);
    expect(CodeqError.is(nf)).toBe(true);
    expect(nf).toMatchObject({ code: 'NOT_FOUND', message: 'not found', details: { httpStatus: 404 } });
    await expect(producer.submit('x', {}, { webhook: 'ftp://nope' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: 'invalid webhook url' });
    const bad = createProducer({ baseUrl: server.url, token: 'wrong' });
    await expect(bad.submit('x', {})).rejects.toMatchObject({ code: 'UNAUTHENTICATED', message: 'invalid token', details: { httpStatus: 401 } });
    await bad.close();
  });
});
