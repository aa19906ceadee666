import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
/** Claims, long-poll wake-up, heartbeats, nack/backoff, abandon, lease expiry, DLQ and fencing. */
import { client, sleep, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer;
let c: ReturnType<typeof client>;
afterEach(async () => {
  await s?.stop();
});
const start = async (o: Parameters<typeof startServer>[0] = {}) => {
  s = await startServer(o);
  c = client(s.url);
};

describe('claim', () => {
  beforeEach(() => start());

  it('answers 204 with an empty body when nothing is claimable', async () => {
    const r = await c.claim({ commands: ['none'] });
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
  });

  it('long-poll is woken directly by a create (no polling delay)', async () => {
    const t0 = Date.now();
    const waiting = c.claim({ commands: ['wake'], waitSeconds: 10 });
    await sleep(200);
    const created = await c.create({ command: 'wake', payload: 1 });
    const r = await waiting;
    const elapsed = Date.now() - t0;
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(created.body.id);
    expect(elapsed).toBeLessThan(2000);
  });

  it('long-poll ends with 204 at the deadline', async () => {
    const t0 = Date.now();
    const r = await c.claim({ commands: ['wake2'], waitSeconds: 1 });
    expect(r.status).toBe(204);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
  });

  it('never hands one task to two concurrent claimers', async () => {
    const n = 60;
    await Promise.all(Array.from({ length: n }, (_, i) => c.create({ command: 'race', payload: i })));
    const claims = await Promise.all(Array.from({ length: 100 }, (_, i) => c.claim({ commands: ['race'], waitSeconds: 1 }, i % 2 ? T.worker : T.worker2)));
    const ids = claims.filter((r) => r.status === 200).map((r) => r.body.id);
    expect(ids).toHaveLength(n);
    expect(new Set(ids).size).toBe(n);
  });

  it('claims in batches up to count, and validates count', async () => {
    for (let i = 0; i < 3; i++) await c.create({ command: 'bc', payload: i });
    const r = await c.call('POST', '/v1/codeq/tasks/claim/batch', { token: T.worker, body: { commands: ['bc'], count: 5 } });
    expect(r.status).toBe(200);
    expect(r.body.tasks).toHaveLength(3);
    expect((await c.call('POST', '/v1/codeq/tasks/claim/batch', { token: T.worker, body: { commands: ['bc'], count: 5 } })).status).toBe(204);
    const over = await c.call('POST', '/v1/codeq/tasks/claim/batch', { token: T.worker, body: { count: 11 } });
    expect(over.status).toBe(400);
    expect(over.body.error).toBe('count exceeds maximum of 10');
    expect((await c.call('POST', '/v1/codeq/tasks/claim/batch', { token: T.worker, body: {} })).body.error).toBe('invalid body');
  });

  it('enforces scopes and event types', async () => {
    await c.create({ command: 'ONLY_THIS', payload: 1 });
    const notAllowed = await c.claim({ commands: ['OTHER'] }, T.limited);
    expect(notAllowed.status).toBe(403);
    expect(notAllowed.body.error).toBe('event type not allowed');
    const ok = await c.claim({}, T.limited); // no commands → the token's event types
    expect(ok.status).toBe(200);
    const hb = await c.heartbeat(ok.body.id, {}, T.limited);
    expect(hb.status).toBe(403);
    expect(hb.body.error).toBe('missing scope');
    const res = await c.result(ok.body.id, { status: 'COMPLETED', result: {} }, T.limited);
    expect(res.status).toBe(403);
    // producers are not workers
    expect((await c.claim({ commands: ['x'] }, T.producer)).status).toBe(401);
  });

  it('rejects bad claim bodies with 400 and changes nothing', async () => {
    await c.create({ command: 'cb', payload: 1 });
    for (const raw of ['', '{"commands":"cb"}', '{"commands":["cb"],"leaseSeconds":"60"}', '{"commands":["cb"],"leaseSeconds":99999999}', 'nope']) {
      const r = await c.call('POST', '/v1/codeq/tasks/claim', { token: T.worker, raw, headers: { 'content-type': 'application/json' } });
      expect(r.status).toBe(400);
    }
    expect((await c.call('GET', '/v1/codeq/admin/queues/cb', { token: T.producer })).body).toMatchObject({ ready: 1, inProgress: 0 });
  });
});

describe('heartbeat, abandon, nack', () => {
  beforeEach(() => start({ backoffPolicy: 'fixed', backoffBaseSeconds: 1, backoffMaxSeconds: 900 }));

  it('heartbeat extends the lease for the owner only', async () => {
    const id = (await c.create({ command: 'hb', payload: 1 })).body.id;
    const claimed = await c.claim({ commands: ['hb'], leaseSeconds: 5 });
    const r = await c.heartbeat(id, { extendSeconds: 120 });
    expect(r.status).toBe(200);
    expect(r.body.ok).toBe(true);
    const after = (await c.get(id)).body;
    expect(Date.parse(after.leaseUntil) - Date.now()).toBeGreaterThan(100_000);
    expect(after.leaseUntil).not.toBe(claimed.body.leaseUntil);
    const other = await c.heartbeat(id, {}, T.worker2);
    expect(other.status).toBe(403);
    expect(other.body.error).toBe('not-owner');
    const unknown = await c.heartbeat('00000000-0000-4000-8000-000000000000', {});
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe('not-found');
    expect((await c.call('POST', `/v1/codeq/tasks/${id}/heartbeat`, { token: T.worker, raw: '' })).status).toBe(400);
  });

  it('abandon puts the task back at the end of its FIFO, attempts unchanged', async () => {
    const a = (await c.create({ command: 'ab', payload: 'a' })).body.id;
    const b = (await c.create({ command: 'ab', payload: 'b' })).body.id;
    expect((await c.claim({ commands: ['ab'] })).body.id).toBe(a);
    expect((await c.abandon(a, T.worker2)).status).toBe(403);
    const r = await c.abandon(a);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'requeued' });
    expect((await c.get(a)).body).toMatchObject({ status: 'PENDING', lastKnownLocation: 'PENDING_LIST', attempts: 1 });
    expect((await c.claim({ commands: ['ab'] })).body.id).toBe(b);
    expect((await c.claim({ commands: ['ab'] })).body.id).toBe(a);
    const again = await c.abandon(b, T.worker, {});
    expect(again.status).toBe(200);
    const notHeld = await c.abandon(b);
    expect(notHeld.status).toBe(403);
  });

  it('nack retries after the backoff and dead-letters after maxAttempts deliveries', async () => {
    const id = (await c.create({ command: 'nk', payload: 1, maxAttempts: 3 })).body.id;
    expect((await c.claim({ commands: ['nk'] })).body.attempts).toBe(1);
    // The default backoff of a first nack is 1 s. Delays are due at the start of their second, so
    // a 1 s delay may already be over by the next request: only its value is asserted here.
    const n1 = await c.nack(id, { reason: 'flaky' });
    expect(n1.status).toBe(200);
    expect(n1.body).toEqual({ delaySeconds: 1, status: 'requeued' });
    const second = await c.claim({ commands: ['nk'], waitSeconds: 4 });
    expect(second.status).toBe(200);
    expect(second.body.attempts).toBe(2);
    // A 3 s delay leaves at least 2 s in which the task is delayed and not claimable.
    const n2 = await c.nack(id, { reason: 'flaky again', delaySeconds: 3 });
    expect(n2.body).toEqual({ delaySeconds: 3, status: 'requeued' });
    expect((await c.get(id)).body).toMatchObject({ status: 'PENDING', lastKnownLocation: 'DELAYED_ZSET' });
    expect((await c.claim({ commands: ['nk'] })).status).toBe(204);
    const third = await c.claim({ commands: ['nk'], waitSeconds: 6 });
    expect(third.status).toBe(200);
    expect(third.body.attempts).toBe(3);
    const n3 = await c.nack(id, { reason: 'fatal' });
    expect(n3.body).toEqual({ delaySeconds: 0, status: 'dlq' });
    expect((await c.get(id)).body).toMatchObject({ status: 'FAILED', lastKnownLocation: 'DLQ_SET', error: 'fatal', attempts: 3 });
    // dead-lettered tasks get a FAILED result record so result waiters finish
    const res = await c.getResult(id);
    expect(res.status).toBe(200);
    expect(res.body.result).toMatchObject({ status: 'FAILED', error: 'fatal' });
    expect((await c.call('GET', '/v1/codeq/admin/queues/nk', { token: T.producer })).body).toMatchObject({ dlq: 1, ready: 0, delayed: 0 });
    const m = await c.call('GET', '/metrics');
    expect(m.text).toContain('codeq_task_completed_total{command="nk",status="FAILED"} 1');
    expect(m.text).toContain('codeq_dlq_depth{command="nk"} 1');
  });

  it('nack with an explicit delay is capped at backoffMaxSeconds; default maxAttempts gives five deliveries', async () => {
    const id = (await c.create({ command: 'nk2', payload: 1 })).body.id;
    await c.claim({ commands: ['nk2'] });
    const r = await c.nack(id, { delaySeconds: 10_000 });
    expect(r.body).toEqual({ delaySeconds: 900, status: 'requeued' });
    expect((await c.nack(id, {})).body.error).toBe('not-owner');
    expect((await c.nack('00000000-0000-4000-8000-000000000000', {})).status).toBe(404);
  });

  it('counts deliveries: maxAttempts 3 means three deliveries', async () => {
    const id = (await c.create({ command: 'nk3', payload: 1, maxAttempts: 3 })).body.id;
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await c.claim({ commands: ['nk3'], waitSeconds: 3 });
      expect(r.body.id).toBe(id);
      outcomes.push((await c.nack(id, { delaySeconds: 1 })).body.status);
    }
    expect(outcomes).toEqual(['requeued', 'requeued', 'dlq']);
    expect((await c.get(id)).body).toMatchObject({ attempts: 3, error: 'MAX_ATTEMPTS' });
  });
});

describe('lease expiry', () => {
  it('redelivers an expired lease, then dead-letters it with LEASE_EXPIRED', async () => {
    await start({ backoffPolicy: 'fixed', backoffBaseSeconds: 0 });
    const id = (await c.create({ command: 'ex', payload: 1, maxAttempts: 2 })).body.id;
    const first = await c.claim({ commands: ['ex'], leaseSeconds: 1 });
    expect(first.body.id).toBe(id);
    const second = await c.claim({ commands: ['ex'], leaseSeconds: 1, waitSeconds: 5 }, T.worker2);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ id, attempts: 2, workerId: 'worker-2' });
    expect(second.body.leaseId).not.toBe(first.body.leaseId);
    // The first worker lost its lease: it can no longer finish or extend the task.
    expect((await c.result(id, { status: 'COMPLETED', result: {}, leaseId: first.body.leaseId })).status).toBe(403);
    expect((await c.heartbeat(id, {})).status).toBe(403);
    const waited = await c.getResult(id, T.producer, 5);
    expect(waited.status).toBe(200);
    expect(waited.body.result).toMatchObject({ status: 'FAILED', error: 'LEASE_EXPIRED' });
    expect((await c.get(id)).body).toMatchObject({ status: 'FAILED', lastKnownLocation: 'DLQ_SET', error: 'LEASE_EXPIRED' });
    const m = await c.call('GET', '/metrics');
    expect(m.text).toContain('codeq_lease_expired_total{command="ex"} 2');
  });
});

describe('leases that expired while the server was down', () => {
  it('are all handed back at start-up, in slices, while the server keeps answering', async () => {
    // 1,500 leases: more than one timer slice (1,000) and than one concurrent expiry slice (256).
    await start({ backoffPolicy: 'fixed', backoffBaseSeconds: 0 });
    const n = 1500;
    for (let b = 0; b < n / 100; b++) {
      const r = await c.call('POST', '/v1/codeq/tasks/batch', { token: T.producer, body: { tasks: Array.from({ length: 100 }, (_, i) => ({ command: 'down', payload: b * 100 + i })) } });
      expect(r.status).toBeLessThan(300);
    }
    const leased = new Set<string>();
    while (leased.size < n) {
      const r = await c.call('POST', '/v1/codeq/tasks/claim/batch', { token: T.worker, body: { commands: ['down'], count: 10, leaseSeconds: 2 } });
      expect(r.status).toBe(200);
      for (const t of r.body.tasks) leased.add(t.id);
    }
    const dir = s.dir;
    await s.stop({ keepDir: true });
    await sleep(2500); // every lease is past its end while nothing runs
    s = await startServer({ backoffPolicy: 'fixed', backoffBaseSeconds: 0 }, { dir });
    c = client(s.url);
    expect((await c.call('GET', '/healthz')).status).toBe(200);
    const again = new Map<string, number>();
    const deadline = Date.now() + 60_000;
    while (again.size < n && Date.now() < deadline) {
      const r = await c.call('POST', '/v1/codeq/tasks/claim/batch', { token: T.worker, body: { commands: ['down'], count: 10, leaseSeconds: 60, waitSeconds: 1 } });
      if (r.status === 204) continue;
      expect(r.status).toBe(200);
      for (const t of r.body.tasks) again.set(t.id, t.attempts);
    }
    expect(again.size).toBe(n);
    expect([...again.keys()].every((id) => leased.has(id))).toBe(true);
    expect([...again.values()].every((a) => a === 2)).toBe(true);
    const m = await c.call('GET', '/metrics');
    expect(m.text).toContain(`codeq_lease_expired_total{command="down"} ${n}`);
  }, 120_000);
});

describe('results and fencing', () => {
  beforeEach(() => start());

  it('validates results and applies upstream check order', async () => {
    const id = (await c.create({ command: 'rs', payload: 1 })).body.id;
    expect((await c.result(id, { status: 'COMPLETED', result: {} })).status).toBe(409);
    await c.claim({ commands: ['rs'] });
    const cases: [unknown, string][] = [
      [{ status: 'DONE', result: {} }, 'invalid status'],
      [{ status: 'COMPLETED' }, 'result required when status=COMPLETED'],
      [{ status: 'FAILED', error: '  ' }, 'error required when status=FAILED'],
      [{ status: 'COMPLETED', result: [1] }, 'invalid request body'],
      [{}, 'invalid request body'],
    ];
    for (const [body, message] of cases) {
      const r = await c.result(id, body);
      expect(r.status).toBe(400);
      expect(r.body.error).toBe(message);
    }
    expect((await c.get(id)).body.status).toBe('IN_PROGRESS');
    expect((await c.result(id, { status: 'COMPLETED', result: {} }, T.worker2)).body.error).toBe('not-owner');
    const ok = await c.result(id, { status: 'FAILED', error: 'boom', result: { partial: true } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ taskId: id, status: 'FAILED', error: 'boom', result: { partial: true } });
    const twice = await c.result(id, { status: 'FAILED', error: 'boom' });
    expect(twice.status).toBe(409);
    expect(twice.body.error).toBe('not-in-progress');
    expect((await c.get(id)).body).toMatchObject({ status: 'FAILED', lastKnownLocation: 'NONE', error: 'boom', resultKey: 'codeq:results' });
    expect((await c.result('00000000-0000-4000-8000-000000000000', { status: 'COMPLETED', result: {} })).status).toBe(404);
  });

  it('answers a resubmission for the same lease with the stored record (safe retries)', async () => {
    const id = (await c.create({ command: 'rr', payload: 1 })).body.id;
    const { leaseId } = (await c.claim({ commands: ['rr'] })).body;
    const first = await c.result(id, { status: 'COMPLETED', result: { n: 1 }, leaseId });
    const again = await c.result(id, { status: 'COMPLETED', result: { n: 1 }, leaseId });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const wrong = await c.result(id, { status: 'COMPLETED', result: {}, leaseId: 'other-lease' });
    expect(wrong.status).toBe(409);
  });

  it('fences a stale lease even when workers share one subject', async () => {
    if (s) await s.stop();
    await start({ backoffPolicy: 'fixed', backoffBaseSeconds: 0 });
    const id = (await c.create({ command: 'fence', payload: 1 })).body.id;
    const old = (await c.claim({ commands: ['fence'], leaseSeconds: 1 })).body.leaseId;
    const fresh = await c.claim({ commands: ['fence'], waitSeconds: 5 });
    expect(fresh.body.id).toBe(id);
    const stale = await c.result(id, { status: 'COMPLETED', result: {}, leaseId: old });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ error: 'lease-mismatch', code: 'LEASE_NOT_HELD' });
    expect((await c.heartbeat(id, { leaseId: old })).status).toBe(409);
    expect((await c.nack(id, { leaseId: old })).status).toBe(409);
    expect((await c.result(id, { status: 'COMPLETED', result: {}, leaseId: fresh.body.leaseId })).status).toBe(200);
  });

  it('batch results apply per item', async () => {
    const a = (await c.create({ command: 'br', payload: 1 })).body.id;
    const b = (await c.create({ command: 'br', payload: 2 })).body.id;
    await c.call('POST', '/v1/codeq/tasks/claim/batch', { token: T.worker, body: { commands: ['br'], count: 2 } });
    const r = await c.call('POST', '/v1/codeq/tasks/batch/results', {
      token: T.worker,
      body: { results: [{ taskId: a, status: 'COMPLETED', result: { ok: 1 } }, { taskId: b, status: 'FAILED', error: 'x' }, { taskId: 'nope', status: 'COMPLETED', result: {} }, { status: 'COMPLETED', result: {} }] },
    });
    expect(r.status).toBe(200);
    expect(r.body.results[0]).toMatchObject({ taskId: a, result: { status: 'COMPLETED' } });
    expect(r.body.results[1]).toMatchObject({ taskId: b, result: { status: 'FAILED', error: 'x' } });
    expect(r.body.results[2]).toEqual({ taskId: 'nope', error: 'task not found' });
    expect(r.body.results[3]).toEqual({ taskId: '', error: 'task not found' });
    const big = await c.call('POST', '/v1/codeq/tasks/batch/results', { token: T.worker, body: { results: Array.from({ length: 101 }, () => ({ taskId: a })) } });
    expect(big.body.error).toBe('batch size exceeds maximum of 100');
  });

  it('stores base64 artifacts under the artifacts dir and refuses names that escape it', async () => {
    const id = (await c.create({ command: 'art', payload: 1 })).body.id;
    await c.claim({ commands: ['art'] });
    const evil = await c.result(id, { status: 'COMPLETED', result: {}, artifacts: [{ name: '../../etc/passwd', contentBase64: 'aGk=' }] });
    expect(evil.status).toBe(400);
    expect((await c.get(id)).body.status).toBe('IN_PROGRESS');
    const badB64 = await c.result(id, { status: 'COMPLETED', result: {}, artifacts: [{ name: 'a.txt', contentBase64: '!!!' }] });
    expect(badB64.status).toBe(400);
    const ok = await c.result(id, { status: 'COMPLETED', result: {}, artifacts: [{ name: 'report.txt', contentBase64: 'aGVsbG8' }, { name: 'link', url: 'https://x/y' }] });
    expect(ok.status).toBe(200);
    expect(ok.body.artifacts[0]).toEqual({ name: 'link', url: 'https://x/y' });
    expect(ok.body.artifacts[1].url).toBe(`/v1/codeq/tasks/${id}/artifacts/report.txt`);
    expect(await readFile(join(s.dir, 'artifacts', 'results', id, 'report.txt'), 'utf8')).toBe('hello');
    const served = await c.call('GET', ok.body.artifacts[1].url, { token: T.producer });
    expect(served.status).toBe(200);
    expect(served.text).toBe('hello');
    expect((await c.call('GET', ok.body.artifacts[1].url, { token: T.globexProducer })).status).toBe(404);
    expect((await c.call('GET', `/v1/codeq/tasks/${id}/artifacts/missing.txt`, { token: T.producer })).status).toBe(404);
    expect((await c.call('GET', `/v1/codeq/tasks/${id}/artifacts/..%2F..%2Fetc%2Fpasswd`, { token: T.producer })).status).toBe(404);
  });
});
