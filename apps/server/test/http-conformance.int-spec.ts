/**
 * HTTP wire details of http-api §1 that an upstream client can observe (acceptance audit):
 * trailing-slash redirects (§1.1), only the first JSON value of a body is read (§1.2), payloads
 * keep every key, `__proto__` included (§6.1), and topic timestamps are formatted like every other
 * timestamp (§1.3: fractional seconds with trailing zeros trimmed).
 */
import { call, client, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer;

/** A request whose redirect is reported, not followed. */
async function noFollow(method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const init: RequestInit = { method, headers, redirect: 'manual' };
  if (body !== undefined) init.body = body;
  const r = await fetch(s.url + path, init);
  const text = await r.text();
  return { status: r.status, location: r.headers.get('location'), text, requestId: r.headers.get('x-request-id') };
}

describe('HTTP conformance (http-api §1)', () => {
  beforeAll(async () => {
    // Every timestamp of this server has 120 ms: a formatter that does not trim zeros shows `.120Z`.
    s = await startServer({}, { clock: { now: () => Math.floor(Date.now() / 1000) * 1000 + 120 } });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('a known route asked with a trailing slash is redirected: 301 for GET, 307 otherwise, query kept, before auth', async () => {
    const post = await noFollow('POST', '/v1/codeq/tasks/', { 'content-type': 'application/json' }, '{"command":"X","payload":1}');
    expect(post).toMatchObject({ status: 307, location: '/v1/codeq/tasks' });
    expect(post.requestId).toMatch(/\S/);
    expect(await noFollow('GET', '/v1/codeq/admin/queues/?x=1')).toMatchObject({ status: 301, location: '/v1/codeq/admin/queues?x=1' });
    expect(await noFollow('GET', '/v1/codeq/tasks/abc/result/')).toMatchObject({ status: 301, location: '/v1/codeq/tasks/abc/result' });
    expect(await noFollow('POST', '/v1/codeq/tasks/abc/heartbeat/')).toMatchObject({ status: 307, location: '/v1/codeq/tasks/abc/heartbeat' });
    expect(await noFollow('POST', '/v1/codeq/tasks/claim/batch/')).toMatchObject({ status: 307, location: '/v1/codeq/tasks/claim/batch' });
    expect(await noFollow('DELETE', '/v1/codeq/admin/topics/t1/?deletionPolicy=Delete')).toMatchObject({ status: 307, location: '/v1/codeq/admin/topics/t1?deletionPolicy=Delete' });
    expect(await noFollow('GET', '/metrics/')).toMatchObject({ status: 301, location: '/metrics' });
    // The redirect target answers normally.
    const followed = await call(s.url, 'POST', '/v1/codeq/tasks/', { token: T.producer, body: { command: 'SLASH', payload: 1 } });
    expect(followed.status).toBe(202);
    // Unknown paths and wrong methods stay plain-text 404s, with or without the slash.
    for (const [method, path] of [
      ['GET', '/v1/codeq/nope/'],
      ['DELETE', '/v1/codeq/tasks/'],
      ['GET', '/v1/codeq/tasks//'],
      ['PUT', '/v1/codeq/tasks/'],
    ] as const) {
      const r = await noFollow(method, path);
      expect({ method, path, status: r.status, text: r.text }).toEqual({ method, path, status: 404, text: '404 page not found' });
    }
  });

  it('a method without a route is the plain-text 404, HEAD and OPTIONS included', async () => {
    for (const [method, path] of [
      ['HEAD', '/v1/codeq/raft/status'],
      ['HEAD', '/metrics'],
      ['OPTIONS', '/v1/codeq/tasks'],
      ['DELETE', '/v1/codeq/tasks/claim'],
      ['PATCH', '/v1/codeq/tasks/abc'],
    ] as const) {
      const r = await fetch(s.url + path, { method, headers: { authorization: `Bearer ${T.producer}` } });
      const text = method === 'HEAD' ? '404 page not found' : await r.text();
      expect({ method, path, status: r.status, type: r.headers.get('content-type'), text }).toEqual({ method, path, status: 404, type: 'text/plain; charset=utf-8', text: '404 page not found' });
    }
    expect((await call(s.url, 'GET', '/v1/codeq/raft/status', { token: T.producer })).status).toBe(200);
  });

  it('only the first JSON value of a body is read; the bytes after it are ignored (the topic PUT stays strict)', async () => {
    const c = client(s.url);
    const created = await c.call('POST', '/v1/codeq/tasks', { token: T.producer, raw: '{"command":"FIRST","payload":{"b":"}{","a":[1]}} {"command":"SECOND"} trailing', headers: { 'content-type': 'application/json' } });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ command: 'FIRST', payload: '{"a":[1],"b":"}{"}' });
    const claimed = await c.call('POST', '/v1/codeq/tasks/claim', { token: T.worker, raw: '{"commands":["FIRST"]}garbage' });
    expect(claimed.status).toBe(200);
    expect(claimed.body.id).toBe(created.body.id);
    const done = await c.call('POST', `/v1/codeq/tasks/${created.body.id}/result`, { token: T.worker, raw: '{"status":"COMPLETED","result":{"ok":true}}\n{"status":"FAILED"}' });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: 'COMPLETED', result: { ok: true } });
    // A first value that is not complete JSON is still the route's bind error.
    const broken = await c.call('POST', '/v1/codeq/tasks', { token: T.producer, raw: '{"command":"FIRST","payload":1 garbage}' });
    expect(broken.status).toBe(400);
    expect(broken.body.error).toBe('invalid body');
    const topic = await c.call('PUT', '/v1/codeq/admin/topics/strict', { token: T.producer, raw: '{"priorityTiers":[1],"maxAttempts":3,"deadLetterTopicRef":"dlq"} {}' });
    expect(topic.status).toBe(400);
    expect(topic.body.error).toMatch(/^invalid request body: /);
    expect((await c.call('GET', '/v1/codeq/admin/topics/strict', { token: T.producer })).status).toBe(404);
  });

  it('a body that is the JSON null binds like {} (claim, heartbeat, nack accept it; routes with required fields do not)', async () => {
    const c = client(s.url);
    const created = await c.create({ command: 'NULLBODY', payload: 1 });
    expect((await c.call('POST', '/v1/codeq/tasks/claim', { token: T.worker, raw: 'null' })).status).toBe(204); // default commands only
    const claimed = await c.claim({ commands: ['NULLBODY'] });
    expect(claimed.body.id).toBe(created.body.id);
    const hb = await c.call('POST', `/v1/codeq/tasks/${created.body.id}/heartbeat`, { token: T.worker, raw: 'null' });
    expect(hb.status).toBe(200);
    expect(hb.body.ok).toBe(true);
    const nack = await c.call('POST', `/v1/codeq/tasks/${created.body.id}/nack`, { token: T.worker, raw: 'null' });
    expect(nack.status).toBe(200);
    expect(nack.body.status).toBe('requeued');
    for (const [path, error] of [
      ['/v1/codeq/tasks', 'invalid body'],
      ['/v1/codeq/tasks/batch', 'invalid body'],
      ['/v1/codeq/tasks/claim/batch', 'invalid body'],
      [`/v1/codeq/tasks/${created.body.id}/result`, 'invalid request body'],
      ['/v1/codeq/workers/subscriptions', 'invalid body'],
    ] as const) {
      const token = path === '/v1/codeq/tasks' || path === '/v1/codeq/tasks/batch' ? T.producer : T.worker;
      const r = await c.call('POST', path, { token, raw: 'null' });
      expect({ path, status: r.status, error: r.body.error }).toEqual({ path, status: 400, error });
    }
  });

  it('a payload keeps a `__proto__` key (upstream re-serialises every key of the decoded value)', async () => {
    const c = client(s.url);
    const raw = '{"command":"PROTO","payload":{"z":1,"__proto__":{"polluted":true},"nested":{"__proto__":[1,2]}}}';
    const created = await c.call('POST', '/v1/codeq/tasks', { token: T.producer, raw });
    expect(created.status).toBe(202);
    const expected = '{"__proto__":{"polluted":true},"nested":{"__proto__":[1,2]},"z":1}';
    expect(created.body.payload).toBe(expected);
    expect((await c.get(created.body.id)).body.payload).toBe(expected);
    const claimed = await c.claim({ commands: ['PROTO'] });
    expect(claimed.status).toBe(200);
    expect(claimed.body.payload).toBe(expected);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('a runAt or cleanup `before` naming a day that does not exist is refused (Go does not roll 02-30 over into March)', async () => {
    const c = client(s.url);
    for (const runAt of ['2026-02-30T00:00:00Z', '2027-02-29T10:00:00Z', '2026-04-31T00:00:00+02:00']) {
      const r = await c.create({ command: 'BADDATE', payload: 1, runAt });
      expect({ runAt, status: r.status, error: r.body.error }).toEqual({ runAt, status: 400, error: "invalid 'runAt' (use RFC3339)" });
    }
    const stats = await c.call('GET', '/v1/codeq/admin/queues/BADDATE', { token: T.producer });
    expect(stats.body).toMatchObject({ ready: 0, delayed: 0 });
    const ok = await c.create({ command: 'BADDATE', payload: 1, runAt: '2028-02-29T00:00:00Z' });
    expect(ok.status).toBe(202);
    expect(ok.body.lastKnownLocation).toBe('DELAYED_ZSET');
    const cleanup = await c.call('POST', '/v1/codeq/admin/tasks/cleanup', { token: T.producer, body: { before: '2026-06-31T00:00:00Z' } });
    expect(cleanup.status).toBe(400);
    expect(cleanup.body.error).toBe("invalid 'before' (use RFC3339)");
    // compatibility #35: a `before` of the wrong type is refused too (upstream drops it and purges up to now).
    const typed = await c.call('POST', '/v1/codeq/admin/tasks/cleanup', { token: T.producer, body: { before: 5 } });
    expect(typed.status).toBe(400);
    expect(typed.body.error).toBe("invalid 'before' (use RFC3339)");
  });

  it('batch results naming one task twice: the first item wins, the repeat is not-in-progress (compatibility #34)', async () => {
    const c = client(s.url);
    const created = await c.create({ command: 'TWICE', payload: 1 });
    expect((await c.claim({ commands: ['TWICE'] })).body.id).toBe(created.body.id);
    const id = created.body.id as string;
    const r = await c.call('POST', '/v1/codeq/tasks/batch/results', {
      token: T.worker,
      body: { results: [{ taskId: id, status: 'COMPLETED', result: { n: 1 } }, { taskId: id, status: 'COMPLETED', result: { n: 2 } }] },
    });
    expect(r.status).toBe(200);
    expect(r.body.results).toEqual([{ taskId: id, result: expect.objectContaining({ status: 'COMPLETED', result: { n: 1 } }) }, { taskId: id, error: 'not-in-progress' }]);
    expect((await c.getResult(id)).body.result.result).toEqual({ n: 1 });
  });

  it('JSON answers escape < > & inside strings as \\u003c \\u003e \\u0026, like Go (same values once parsed)', async () => {
    const c = client(s.url);
    const created = await c.create({ command: 'ESC<&>', payload: 1 });
    expect(created.status).toBe(202);
    expect(created.text).toContain('"command":"ESC\\u003c\\u0026\\u003e"');
    expect(created.body.command).toBe('ESC<&>');
    const claimed = await c.claim({ commands: ['ESC<&>'] });
    expect(claimed.text).not.toMatch(/[<>&]/);
    const done = await c.result(created.body.id, { status: 'COMPLETED', result: { html: '<b>a & b</b>', 'k<': ['>'] } });
    expect(done.status).toBe(200);
    expect(done.text).toContain('"html":"\\u003cb\\u003ea \\u0026 b\\u003c/b\\u003e"');
    expect(done.body.result).toEqual({ html: '<b>a & b</b>', 'k<': ['>'] });
    const got = await c.getResult(created.body.id);
    expect(got.text).not.toMatch(/[<>&]/);
    expect(got.body.result.result).toEqual({ html: '<b>a & b</b>', 'k<': ['>'] });
  });

  it('topic timestamps are UTC with trailing zeros of the fraction trimmed, as task timestamps are', async () => {
    const c = client(s.url);
    const put = await c.call('PUT', '/v1/codeq/admin/topics/stamps', { token: T.producer, body: { priorityTiers: [1], maxAttempts: 3, deadLetterTopicRef: 'stamps-dlq' } });
    expect(put.status).toBe(201);
    const got = await c.call('GET', '/v1/codeq/admin/topics/stamps', { token: T.producer });
    const task = await c.create({ command: 'STAMP', payload: 1 });
    for (const t of [put.body.createdAt, put.body.updatedAt, got.body.createdAt, task.body.createdAt]) expect(t).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.12Z$/);
  });
});
