/** Create, batch, read, idempotency, ordering, tenant isolation and bad input over real HTTP. */
import { call, client, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer;
let c: ReturnType<typeof client>;
beforeEach(async () => {
  s = await startServer();
  c = client(s.url);
});
afterEach(async () => {
  await s.stop();
});

const stats = async (command: string, token: string = T.producer) => (await c.call('GET', `/v1/codeq/admin/queues/${command}`, { token })).body;

describe('POST /v1/codeq/tasks', () => {
  it('creates a ready task with upstream shape and Go-style payload text', async () => {
    const r = await c.create({ command: 'Send', payload: { b: 1, a: '<x>' }, priority: 42, webhook: 'https://example.com/hook' });
    expect(r.status).toBe(202);
    expect(Object.keys(r.body)).toEqual(['id', 'command', 'payload', 'priority', 'webhook', 'status', 'lastKnownLocation', 'maxAttempts', 'tenantId', 'createdAt', 'updatedAt']);
    expect(r.body).toMatchObject({ command: 'Send', payload: '{"a":"\\u003cx\\u003e","b":1}', priority: 9, status: 'PENDING', lastKnownLocation: 'PENDING_LIST', maxAttempts: 5, tenantId: 'acme' });
    expect(r.body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect((await c.create({ command: 'x', payload: 'hello', priority: -5 })).body).toMatchObject({ payload: '"hello"' });
    expect((await c.create({ command: 'x', payload: 42 })).body.payload).toBe('42');
    expect((await c.create({ command: 'x', payload: [1, 2] })).body.payload).toBe('[1,2]');
    expect((await c.create({ command: 'x', payload: false })).status).toBe(202);
  });

  it('round-trips unicode payloads and commands', async () => {
    const payload = { text: 'héllo 👋 مرحبا 𝄞', nested: { 'ключ': ['数据', '\u2028'] } };
    const r = await c.create({ command: 'déjà-vu 🚀', payload });
    expect(r.status).toBe(202);
    expect(JSON.parse(r.body.payload)).toEqual(payload);
    const claimed = await c.claim({ commands: ['DÉJÀ-VU 🚀'] });
    expect(claimed.body.command).toBe('déjà-vu 🚀');
    expect(JSON.parse(claimed.body.payload)).toEqual(payload);
    const done = await c.result(claimed.body.id, { status: 'COMPLETED', result: { echo: payload } });
    expect(done.body.result).toEqual({ echo: payload });
  });

  it('schedules with delaySeconds and runAt', async () => {
    const d = await c.create({ command: 'later', payload: {}, delaySeconds: 60 });
    expect(d.body.lastKnownLocation).toBe('DELAYED_ZSET');
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await c.create({ command: 'later', payload: {}, runAt: future, delaySeconds: -1 })).body.lastKnownLocation).toBe('DELAYED_ZSET');
    expect((await c.create({ command: 'later', payload: {}, runAt: '2020-01-01T00:00:00+02:00' })).body.lastKnownLocation).toBe('PENDING_LIST');
    expect(await stats('later')).toEqual({ command: 'later', ready: 1, delayed: 2, inProgress: 0, dlq: 0, paused: false });
  });

  it.each([
    ['no body', undefined, 'invalid body'],
    ['malformed JSON', '{"command":', 'invalid body'],
    ['a JSON array', '[]', 'invalid body'],
    ['missing command', '{"payload":1}', 'invalid body'],
    ['missing payload', '{"command":"x"}', 'invalid body'],
    ['null payload', '{"command":"x","payload":null}', 'invalid body'],
    ['command of wrong type', '{"command":5,"payload":1}', 'invalid body'],
    ['priority as a string', '{"command":"x","payload":1,"priority":"5"}', 'invalid body'],
    ['fractional priority', '{"command":"x","payload":1,"priority":1.5}', 'invalid body'],
    ['blank command', '{"command":"   ","payload":1}', 'invalid command'],
    ['control characters in command', '{"command":"a\\u0000b","payload":1}', 'invalid command'],
    ['overlong command', JSON.stringify({ command: 'x'.repeat(300), payload: 1 }), 'invalid command'],
    ['bad runAt', '{"command":"x","payload":1,"runAt":"tomorrow"}', "invalid 'runAt' (use RFC3339)"],
    ['negative delay', '{"command":"x","payload":1,"delaySeconds":-1}', "invalid 'delaySeconds' (must be >= 0)"],
    ['ftp webhook', '{"command":"x","payload":1,"webhook":"ftp://h/x"}', 'invalid webhook url'],
    ['hostless webhook', '{"command":"x","payload":1,"webhook":"http://"}', 'invalid webhook url'],
    ['not-a-url webhook', '{"command":"x","payload":1,"webhook":"not-a-url"}', 'invalid webhook url'],
  ])('answers 400 for %s and stores nothing', async (_name, raw, message) => {
    const r = await c.call('POST', '/v1/codeq/tasks', { token: T.producer, raw: raw ?? '', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: message, code: 'VALIDATION_FAILED' });
    expect((await c.call('GET', '/v1/codeq/admin/queues', { token: T.producer })).body).toEqual({});
  });

  it('parses JSON bodies whatever the content type (curl -d without a header)', async () => {
    const r = await c.call('POST', '/v1/codeq/tasks', { token: T.producer, raw: '{"command":"x","payload":1}', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.status).toBe(202);
  });

  it('answers 413 for a body over the limit and stores nothing', async () => {
    const r = await c.create({ command: 'big', payload: 'x'.repeat(1_100_000) });
    expect(r.status).toBe(413);
    expect(r.body).toMatchObject({ error: 'request body too large', code: 'PAYLOAD_TOO_LARGE' });
    expect(await stats('big')).toMatchObject({ ready: 0 });
  });

  it('replays idempotency keys per tenant, atomically under concurrency', async () => {
    const bodies = Array.from({ length: 20 }, (_, i) => ({ command: 'idem', payload: { i }, idempotencyKey: 'order-42' }));
    const rs = await Promise.all(bodies.map((b) => c.create(b)));
    const ids = new Set(rs.map((r) => r.body.id));
    expect(rs.every((r) => r.status === 202)).toBe(true);
    expect(ids.size).toBe(1);
    expect(await stats('idem')).toMatchObject({ ready: 1 });
    // another tenant with the same key gets its own task
    const other = await c.create({ command: 'idem', payload: { mine: true }, idempotencyKey: 'order-42' }, T.globexProducer);
    expect(other.status).toBe(202);
    expect(ids.has(other.body.id)).toBe(false);
    expect(other.body.tenantId).toBe('globex');
    const metrics = await c.call('GET', '/metrics');
    expect(metrics.text).toContain('codeq_task_created_total{command="idem"} 2');
  });

  it('replays the current state of the original task', async () => {
    const first = await c.create({ command: 'idem2', payload: 1, idempotencyKey: 'k' });
    await c.claim({ commands: ['idem2'] });
    const replay = await c.create({ command: 'other', payload: 2, idempotencyKey: 'k' });
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ id: first.body.id, command: 'idem2', status: 'IN_PROGRESS' });
  });
});

describe('POST /v1/codeq/tasks/batch', () => {
  it('creates items independently, reporting per-item errors in order', async () => {
    const r = await c.call('POST', '/v1/codeq/tasks/batch', {
      token: T.producer,
      body: { tasks: [{ command: 'b', payload: 1 }, { command: 'b', payload: 2, runAt: 'not-a-date' }, { payload: 3 }, { command: 'b' }] },
    });
    expect(r.status).toBe(200);
    expect(r.body.results).toHaveLength(4);
    expect(r.body.results[0].task).toMatchObject({ command: 'b', payload: '1' });
    expect(r.body.results[1]).toEqual({ error: "invalid 'runAt' (use RFC3339)" });
    expect(r.body.results[2]).toEqual({ error: 'invalid command' });
    expect(r.body.results[3].task.payload).toBe('null');
    expect(await stats('b')).toMatchObject({ ready: 2 });
  });

  it('rejects empty, missing and oversize batches without creating anything', async () => {
    for (const body of [{}, { tasks: [] }, { tasks: 'x' }]) {
      const r = await c.call('POST', '/v1/codeq/tasks/batch', { token: T.producer, body });
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('invalid body');
    }
    const big = await c.call('POST', '/v1/codeq/tasks/batch', { token: T.producer, body: { tasks: Array.from({ length: 101 }, () => ({ command: 'b', payload: 1 })) } });
    expect(big.status).toBe(400);
    expect(big.body.error).toBe('batch size exceeds maximum of 100');
    const typed = await c.call('POST', '/v1/codeq/tasks/batch', { token: T.producer, body: { tasks: [{ command: 'b', payload: 1 }, { command: 'b', payload: 1, priority: 'high' }] } });
    expect(typed.status).toBe(400);
    expect(await stats('b')).toMatchObject({ ready: 0 });
  });
});

describe('ordering', () => {
  it('claims higher priority first across commands and FIFO within a priority (ADR 0007)', async () => {
    const ids: Record<string, string> = {};
    for (const [name, priority] of [['p0', 0], ['p9', 9], ['p5a', 5], ['p5b', 5], ['p5c', 5]] as const) {
      ids[name] = (await c.create({ command: 'ord', payload: name, priority })).body.id;
    }
    const other = (await c.create({ command: 'first', payload: 1 })).body.id;
    const got: string[] = [];
    for (let i = 0; i < 6; i++) got.push((await c.claim({ commands: ['first', 'ord'] })).body.id);
    // The priority-9 task of the second command does not wait behind the first command's task.
    expect(got).toEqual([ids['p9'], ids['p5a'], ids['p5b'], ids['p5c'], other, ids['p0']]);
    expect((await c.claim({ commands: ['first', 'ord'] })).status).toBe(204);
  });

  it('serves a command with a short queue in turn with a busy command of the same priority (ADR 0007)', async () => {
    const busy: string[] = [];
    for (let i = 0; i < 5; i++) busy.push((await c.create({ command: 'busy', payload: i })).body.id);
    const quiet = [(await c.create({ command: 'quiet', payload: 1 })).body.id, (await c.create({ command: 'quiet', payload: 2 })).body.id];
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push((await c.claim({ commands: ['busy', 'quiet'] })).body.id);
    expect(got).toEqual([busy[0], quiet[0], busy[1], quiet[1]]);
    // Once the quiet command is drained, the busy one has every claim to itself.
    const batch = await c.call('POST', '/v1/codeq/tasks/claim/batch', { token: T.worker, body: { commands: ['busy', 'quiet'], count: 5 } });
    expect(batch.body.tasks.map((t: { id: string }) => t.id)).toEqual([busy[2], busy[3], busy[4]]);
  });

  it('treats commands case-insensitively for queues but keeps the spelling', async () => {
    await c.create({ command: 'MiXeD', payload: 1 });
    const r = await c.claim({ commands: ['mixed'] });
    expect(r.body.command).toBe('MiXeD');
  });
});

describe('GET /v1/codeq/tasks/:id and /result', () => {
  it('reads a task by producer or worker token; unknown ids are 404', async () => {
    const id = (await c.create({ command: 'g', payload: 1 })).body.id;
    expect((await c.get(id)).status).toBe(200);
    expect((await c.get(id, T.worker)).status).toBe(200);
    const missing = await c.get('00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe('not found');
    const r = await c.getResult('00000000-0000-4000-8000-000000000000', T.producer, 10);
    expect(r.status).toBe(404);
    expect(r.body.error).toBe('task not found');
    const pending = await c.getResult(id);
    expect(pending.status).toBe(404);
    expect(pending.body.error).toBe('result not found');
  });

  it('long-polls for a result and wakes when it is stored', async () => {
    const id = (await c.create({ command: 'lp', payload: 1 })).body.id;
    await c.claim({ commands: ['lp'] });
    const started = Date.now();
    const waiting = c.getResult(id, T.producer, 10);
    setTimeout(() => void c.result(id, { status: 'COMPLETED', result: { done: 1 } }), 300);
    const r = await waiting;
    expect(r.status).toBe(200);
    expect(r.body.result).toMatchObject({ taskId: id, status: 'COMPLETED', result: { done: 1 } });
    expect(r.body.task.status).toBe('COMPLETED');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('times out a result long-poll with 404 result not found', async () => {
    const id = (await c.create({ command: 'lp2', payload: 1 })).body.id;
    const started = Date.now();
    const r = await c.getResult(id, T.producer, 1);
    expect(r.status).toBe(404);
    expect(r.body.error).toBe('result not found');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });
});

describe('tenant isolation', () => {
  it('hides one tenant’s tasks, results, queues and stats from another on every route', async () => {
    const id = (await c.create({ command: 'secret', payload: { card: '4111' } })).body.id;
    expect((await c.claim({ commands: ['secret'] }, T.globexWorker)).status).toBe(204);
    const claimed = await c.claim({ commands: ['secret'] });
    expect(claimed.body.id).toBe(id);
    const g = T.globexWorker;
    const gp = T.globexProducer;
    expect((await c.get(id, gp)).status).toBe(404);
    expect((await c.get(id, g)).status).toBe(404);
    expect((await c.getResult(id, gp)).status).toBe(404);
    expect((await c.heartbeat(id, {}, g)).status).toBe(404);
    expect((await c.nack(id, {}, g)).status).toBe(404);
    expect((await c.abandon(id, g)).status).toBe(404);
    expect((await c.result(id, { status: 'COMPLETED', result: {} }, g)).status).toBe(404);
    const batch = await c.call('POST', '/v1/codeq/tasks/batch/results', { token: g, body: { results: [{ taskId: id, status: 'COMPLETED', result: {} }] } });
    expect(batch.body.results[0]).toEqual({ taskId: id, error: 'task not found' });
    expect((await c.call('GET', '/v1/codeq/admin/queues', { token: gp })).body).toEqual({});
    expect((await c.call('GET', '/v1/codeq/admin/queues/secret', { token: gp })).body).toEqual({ command: 'secret', ready: 0, delayed: 0, inProgress: 0, dlq: 0, paused: false });
    // nothing changed for the owner
    expect((await c.get(id)).body).toMatchObject({ status: 'IN_PROGRESS', workerId: 'worker-1' });
    expect((await c.result(id, { status: 'COMPLETED', result: {} })).status).toBe(200);
  });
});

describe('authentication', () => {
  it('answers 401 with upstream messages', async () => {
    expect((await call(s.url, 'POST', '/v1/codeq/tasks', { body: { command: 'x', payload: 1 } })).body.error).toBe('missing Authorization header');
    expect((await call(s.url, 'POST', '/v1/codeq/tasks', { body: { command: 'x', payload: 1 }, headers: { authorization: 'Token abc' } })).body.error).toBe('invalid Authorization format');
    const bad = await c.create({ command: 'x', payload: 1 }, 'nope');
    expect(bad.status).toBe(401);
    expect(bad.body.error).toMatch(/token rejected by every provider/);
    expect(bad.text).not.toContain('nope');
    expect((await c.get('x', 'nope')).body.error).toBe('invalid token');
    // a worker token is not a producer token
    expect((await c.create({ command: 'x', payload: 1 }, T.worker)).status).toBe(401);
  });
});
