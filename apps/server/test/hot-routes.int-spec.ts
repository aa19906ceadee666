/**
 * The hot task routes are registered directly on Fastify with compiled response serialisers
 * (modules/hot-routes/hot-routes.ts, issue 13). Their answers must be byte-for-byte what the
 * shared JSON shapes give (taskToJson / resultToJson through JSON.stringify), with the same
 * headers, error bodies and body-parser errors as every other route.
 */
import { resultToJson, taskToJson } from '../src/domain/task.js';
import { client, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer;
let c: ReturnType<typeof client>;
beforeEach(async () => {
  s = await startServer();
  c = client(s.url);
});
afterEach(async () => {
  await s.stop();
});

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

async function stored(id: string) {
  const t = await s.app.store.get('acme', id);
  if (!t) throw new Error(`task ${id} not stored`);
  return t;
}

describe('hot routes answer exactly the shared JSON shapes', () => {
  it('create, get, claim, heartbeat: bodies are JSON.stringify(taskToJson(record)), every field in order', async () => {
    const payload = { text: 'héllo 👋 "q" \\ \u2028 \u0001 <x>', n: 1.5, big: 1e21, list: [null, true, {}] };
    const created = await c.call('POST', '/v1/codeq/tasks', {
      token: T.producer,
      body: { command: 'Hot', payload, priority: 7, webhook: 'https://example.com/hook', maxAttempts: 3 },
      headers: { traceparent: TRACEPARENT, tracestate: 'vendor=a' },
    });
    expect(created.status).toBe(202);
    expect(created.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(created.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
    const id = created.body.id as string;
    expect(created.text).toBe(JSON.stringify(taskToJson(await stored(id))));
    expect(created.body).toMatchObject({ priority: 7, webhook: 'https://example.com/hook', traceParent: TRACEPARENT, traceState: 'vendor=a' });

    const claimed = await c.claim({ commands: ['Hot'], leaseSeconds: 60 });
    expect(claimed.status).toBe(200);
    const leased = await stored(id);
    expect(claimed.text).toBe(JSON.stringify(taskToJson(leased)));
    // A leased task has every optional field the claim answer can carry.
    expect(Object.keys(claimed.body)).toEqual(['id', 'command', 'payload', 'priority', 'webhook', 'status', 'lastKnownLocation', 'workerId', 'leaseUntil', 'leaseId', 'attempts', 'maxAttempts', 'tenantId', 'createdAt', 'updatedAt', 'traceParent', 'traceState']);

    const got = await c.get(id);
    expect(got.status).toBe(200);
    expect(got.text).toBe(JSON.stringify(taskToJson(leased)));

    const hb = await c.heartbeat(id, { extendSeconds: 120 });
    expect(hb.status).toBe(200);
    expect(hb.text).toBe(JSON.stringify({ ok: true, leaseUntil: taskToJson(await stored(id))['leaseUntil'] }));

    // Progress (a Nest route) shows up on the hot GET as any JSON value.
    const prog = await c.call('POST', `/v1/codeq/tasks/${id}/progress`, { token: T.worker, body: { progress: { done: 3, of: 10, note: 'ü' } } });
    expect(prog.status).toBe(200);
    const withProgress = await c.get(id);
    expect(withProgress.text).toBe(JSON.stringify({ ...taskToJson(await stored(id)), progress: { done: 3, of: 10, note: 'ü' } }));
  });

  it('result, nack, abandon: bodies match the shared shapes', async () => {
    const a = (await c.create({ command: 'HotR', payload: 1 })).body.id as string;
    await c.claim({ commands: ['HotR'] });
    const done = await c.result(a, { status: 'COMPLETED', result: { echo: 'ok', n: [1, 2.25] } });
    expect(done.status).toBe(200);
    const rec = await s.app.store.getResult('acme', a);
    expect(rec).toBeTruthy();
    expect(done.text).toBe(JSON.stringify(resultToJson(rec!)));
    expect(Object.keys(done.body)).toEqual(['taskId', 'status', 'result', 'completedAt']);

    const b = (await c.create({ command: 'HotN', payload: 2 })).body.id as string;
    await c.claim({ commands: ['HotN'] });
    const nacked = await c.nack(b, { delaySeconds: 7, reason: 'later' });
    expect(nacked.status).toBe(200);
    expect(nacked.text).toBe('{"delaySeconds":7,"status":"requeued"}');

    const d = (await c.create({ command: 'HotA', payload: 3 })).body.id as string;
    await c.claim({ commands: ['HotA'] });
    const abandoned = await c.abandon(d);
    expect(abandoned.status).toBe(200);
    expect(abandoned.text).toBe('{"status":"requeued"}');

    // Nothing left to claim: 204 without a body or a content type.
    const none = await c.claim({ commands: ['Nothing'] });
    expect(none.status).toBe(204);
    expect(none.text).toBe('');
  });

  it('errors keep the upstream body and the request id, also for body-parser errors', async () => {
    const unauth = await c.call('POST', '/v1/codeq/tasks', { body: { command: 'x', payload: 1 }, headers: { 'x-request-id': 'given-id' } });
    expect(unauth.status).toBe(401);
    expect(unauth.headers.get('x-request-id')).toBe('given-id');
    expect(unauth.body).toEqual({ error: 'missing Authorization header', code: 'UNAUTHENTICATED', requestId: 'given-id' });

    const forbidden = await c.heartbeat('00000000-0000-4000-8000-000000000000', {}, T.limited);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toMatchObject({ error: 'missing scope', code: 'FORBIDDEN' });

    const missing = await c.get('00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'NOT_FOUND', requestId: missing.headers.get('x-request-id') });

    // Nested past the depth limit: refused by the body parser before the route runs.
    let deep: unknown = 1;
    for (let i = 0; i < 200; i++) deep = [deep];
    const tooDeep = await c.call('POST', '/v1/codeq/tasks', { token: T.producer, body: { command: 'x', payload: deep } });
    expect(tooDeep.status).toBe(400);
    expect(tooDeep.body).toMatchObject({ code: 'VALIDATION_FAILED', requestId: tooDeep.headers.get('x-request-id') });

    const big = await c.call('POST', '/v1/codeq/tasks/claim', { token: T.worker, raw: JSON.stringify({ commands: ['x'], pad: 'x'.repeat(s.app.config.maxBodyBytes) }) });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ error: 'request body too large', code: 'PAYLOAD_TOO_LARGE' });
  });
});
