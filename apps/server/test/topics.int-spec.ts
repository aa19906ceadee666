/** The topic catalog: validation, idempotent versioning, tenant scoping, and its queue effects. */
import { client, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer;
let c: ReturnType<typeof client>;
beforeEach(async () => {
  s = await startServer({ backoffPolicy: 'fixed', backoffBaseSeconds: 0 });
  c = client(s.url);
});
afterEach(async () => {
  await s.stop();
});

const put = (name: string, body: unknown, token: string = T.producer) => c.call('PUT', `/v1/codeq/admin/topics/${name}`, { token, body });
const policy = { priorityTiers: [5, 1, 3], maxAttempts: 5, deadLetterTopicRef: 'payments-events-dlq', retentionSeconds: 3600, maxConsumers: 20 };

describe('topic catalog', () => {
  it('creates, replays, versions, reads and deletes', async () => {
    const created = await put('payments-events', policy);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ topicId: 'acme.payments-events', tenantId: 'acme', topicName: 'payments-events', version: 1, policy: { ...policy, priorityTiers: [1, 3, 5] } });
    const same = await put('payments-events', policy);
    expect(same.status).toBe(200);
    expect(same.body).toEqual(created.body);
    const changed = await put('payments-events', { ...policy, maxConsumers: 25 });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ version: 2, createdAt: created.body.createdAt });
    expect((await c.call('GET', '/v1/codeq/admin/topics/payments-events', { token: T.producer })).body.version).toBe(2);
    // another tenant's catalog is separate
    expect((await c.call('GET', '/v1/codeq/admin/topics/payments-events', { token: T.globexProducer })).status).toBe(404);
    expect((await c.call('DELETE', '/v1/codeq/admin/topics/payments-events', { token: T.producer })).body.error).toBe('deletionPolicy=Delete is required');
    const del = await c.call('DELETE', '/v1/codeq/admin/topics/payments-events?deletionPolicy=Delete', { token: T.producer });
    expect(del.status).toBe(204);
    expect((await c.call('DELETE', '/v1/codeq/admin/topics/payments-events?deletionPolicy=Delete', { token: T.producer })).status).toBe(204);
    const gone = await c.call('GET', '/v1/codeq/admin/topics/payments-events', { token: T.producer });
    expect(gone.status).toBe(404);
    expect(gone.body.error).toBe('queue topic "acme.payments-events" not found');
  });

  it.each([
    ['unknown field', { ...policy, extra: 1 }, 400, 'invalid request body: json: unknown field "extra"', undefined],
    ['no tiers', { ...policy, priorityTiers: [] }, 422, 'invalid priorityTiers: must have 1 to 10 entries', 'priorityTiers'],
    ['tier 11', { ...policy, priorityTiers: [11] }, 422, 'invalid priorityTiers: entries must be between 0 and 10', 'priorityTiers'],
    ['duplicate tier', { ...policy, priorityTiers: [1, 1] }, 422, 'invalid priorityTiers: entries must be unique', 'priorityTiers'],
    ['maxAttempts 0', { ...policy, maxAttempts: 0 }, 422, 'invalid maxAttempts: must be between 1 and 100', 'maxAttempts'],
    ['self DLQ', { ...policy, deadLetterTopicRef: 'orders' }, 422, 'invalid deadLetterTopicRef: must differ from topicName', 'deadLetterTopicRef'],
    ['consumers', { ...policy, maxConsumers: 10001 }, 422, 'invalid maxConsumers: must be between 0 and 10000', 'maxConsumers'],
  ])('refuses %s', async (_n, body, status, error, field) => {
    const r = await put('orders', body);
    expect(r.status).toBe(status);
    expect(r.body.error).toBe(error);
    if (field) expect(r.body.field).toBe(field);
    expect((await c.call('GET', '/v1/codeq/admin/topics/orders', { token: T.producer })).status).toBe(404);
  });

  it('refuses bad names, bad JSON and non-admins', async () => {
    expect((await put('Bad.Name', policy)).status).toBe(422);
    const r = await c.call('PUT', '/v1/codeq/admin/topics/orders', { token: T.producer, raw: '{"a":1}{"b":2}' });
    expect(r.status).toBe(400);
    expect((await put('orders', policy, T.user)).status).toBe(403);
  });
});

describe('topic policy in the queue', () => {
  it('applies maxAttempts, priority tiers, maxConsumers and dead-letter forwarding to the named command', async () => {
    expect((await put('orders', { priorityTiers: [0, 5], maxAttempts: 1, deadLetterTopicRef: 'orders-dlq', maxConsumers: 1 })).status).toBe(201);
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const a = await c.create({ command: 'ORDERS', payload: { n: 1 }, priority: 7, traceParent: tp });
    expect(a.body).toMatchObject({ maxAttempts: 1, priority: 5 });
    const b = await c.create({ command: 'orders', payload: { n: 2 }, priority: 3, maxAttempts: 4 });
    expect(b.body).toMatchObject({ maxAttempts: 4 });
    expect(b.body.priority).toBeUndefined(); // tier 0
    const first = await c.claim({ commands: ['orders'] });
    expect(first.body.id).toBe(a.body.id);
    // maxConsumers 1: the second task waits until the first is done
    expect((await c.claim({ commands: ['orders'] }, T.worker2)).status).toBe(204);
    const n = await c.nack(a.body.id, { reason: 'poison' });
    expect(n.body.status).toBe('dlq');
    const second = await c.claim({ commands: ['orders'] }, T.worker2);
    expect(second.body.id).toBe(b.body.id);
    // the dead-lettered task was forwarded to orders-dlq with its payload
    const fwd = await c.claim({ commands: ['orders-dlq'], waitSeconds: 2 });
    expect(fwd.status).toBe(200);
    expect(fwd.body).toMatchObject({ command: 'orders-dlq', payload: '{"n":1}', traceParent: tp }); // and its trace context
  });

  it('governs commands whose names have _ or . (read as -, topic names being DNS labels): PROCESS_ORDER by process-order', async () => {
    expect((await put('process_order', { priorityTiers: [0, 5, 9], maxAttempts: 2, deadLetterTopicRef: 'process-order-dlq' })).status).toBe(422);
    expect((await put('process-order', { priorityTiers: [0, 5, 9], maxAttempts: 2, deadLetterTopicRef: 'process-order-dlq' })).status).toBe(201);
    expect((await c.create({ command: 'PROCESS_ORDER', payload: {} })).body).toMatchObject({ maxAttempts: 2 });
    expect((await c.create({ command: 'process.order', payload: {} })).body).toMatchObject({ maxAttempts: 2 });
    expect((await c.create({ command: 'processorder', payload: {} })).body).toMatchObject({ maxAttempts: 5 });
  });
});
