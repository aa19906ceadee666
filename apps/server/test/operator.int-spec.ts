/**
 * Operator API over real HTTP (issue 14): list and search, cancel, pause/resume, commands, dead
 * letters and redrive, metrics. Runs on SQLite, and on PostgreSQL in the PostgreSQL pass.
 */
import { client, sleep, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer;
let c: ReturnType<typeof client>;
beforeEach(async () => {
  s = await startServer({ retentionSeconds: 3600 });
  c = client(s.url);
});
afterEach(async () => {
  await s?.stop();
});

const list = async (query: string, token: string = T.producer) => c.call('GET', `/v1/codeq/tasks${query}`, { token });
const cancel = (id: string, token: string = T.producer) => c.call('POST', `/v1/codeq/tasks/${id}/cancel`, { token });
const admin = (method: string, path: string, body?: unknown, token: string = T.producer) => c.call(method, `/v1/codeq/admin/${path}`, body === undefined ? { token } : { token, body });

/** Create n tasks one after the other; ids in listing order reversed (createdAt, then id, ascending). */
async function created(n: number, body: Record<string, unknown> = {}): Promise<string[]> {
  const made: { id: string; at: number }[] = [];
  for (let i = 0; i < n; i++) {
    const r = await c.create({ command: 'Job', payload: { i }, ...body });
    expect(r.status).toBe(202);
    made.push({ id: r.body.id as string, at: Date.parse(r.body.createdAt as string) });
  }
  // Tasks created in the same millisecond are ordered by id (the listing's tiebreak).
  return made.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((m) => m.id);
}

/** Claim one task of `command` and dead-letter it with `reason` (maxAttempts 1). */
async function deadLetter(command: string, reason: string): Promise<string> {
  const id = (await c.create({ command, payload: { reason }, maxAttempts: 1 })).body.id as string;
  const claimed = await c.claim({ commands: [command] });
  expect(claimed.body.id).toBe(id);
  const n = await c.nack(id, { reason });
  expect(n.body.status).toBe('dlq');
  return id;
}

describe('GET /v1/codeq/tasks', () => {
  it('lists the tenant\'s tasks newest first with attempts, pages with an opaque cursor, and isolates tenants', async () => {
    const ids = await created(7);
    await c.create({ command: 'Job', payload: 1 }, T.globexProducer);
    const first = await list('?limit=3');
    expect(first.status).toBe(200);
    expect(first.body.tasks.map((t: { id: string }) => t.id)).toEqual(ids.slice(-3).reverse());
    expect(first.body.tasks[0]).toMatchObject({ command: 'Job', status: 'PENDING', attempts: 0, tenantId: 'acme' });
    expect(typeof first.body.nextCursor).toBe('string');
    const second = await list(`?limit=3&cursor=${first.body.nextCursor}`);
    expect(second.body.tasks.map((t: { id: string }) => t.id)).toEqual(ids.slice(1, 4).reverse());
    const third = await list(`?limit=3&cursor=${second.body.nextCursor}`);
    expect(third.body.tasks.map((t: { id: string }) => t.id)).toEqual([ids[0]]);
    expect(third.body.nextCursor).toBeNull();
    // a user (non-admin) producer of the tenant lists too; another tenant sees only its own task
    expect((await list('', T.user)).body.tasks).toHaveLength(7);
    const g = await list('', T.globexProducer);
    expect(g.body.tasks).toHaveLength(1);
    expect(g.body.tasks[0].tenantId).toBe('globex');
    // workers do not list
    expect((await list('', T.worker)).status).toBe(401);
  });

  it('keeps pages stable while tasks are being created', async () => {
    const ids = await created(6);
    const p1 = await list('?limit=2');
    await created(3); // newer than any cursor: never shows up in later pages
    const p2 = await list(`?limit=2&cursor=${p1.body.nextCursor}`);
    await created(2);
    const p3 = await list(`?limit=2&cursor=${p2.body.nextCursor}`);
    const seen = [...p1.body.tasks, ...p2.body.tasks, ...p3.body.tasks].map((t: { id: string }) => t.id);
    expect(seen).toEqual([...ids].reverse());
    expect(p3.body.nextCursor).toBeNull();
  });

  it('filters by command, status (comma list; DELAYED apart from PENDING), dlq and creation time, and shows the last error', async () => {
    const [ready] = await created(1);
    const delayed = (await c.create({ command: 'Job', payload: 1, delaySeconds: 600 })).body.id;
    const running = (await c.create({ command: 'Other', payload: 1 })).body.id;
    expect((await c.claim({ commands: ['Other'] })).body.id).toBe(running);
    const done = (await c.create({ command: 'Job', payload: 2, priority: 9 })).body.id;
    expect((await c.claim({ commands: ['Job'] })).body.id).toBe(done);
    await c.result(done, { status: 'FAILED', error: 'boom' });
    const dead = await deadLetter('Other', 'bad input');
    const retried = (await c.create({ command: 'Retry', payload: 1, maxAttempts: 3 })).body.id;
    await c.claim({ commands: ['Retry'] });
    await c.nack(retried, { reason: 'flaky', delaySeconds: 600 });

    const ids = async (q: string) => (await list(q)).body.tasks.map((t: { id: string }) => t.id).sort();
    expect(await ids('?status=PENDING')).toEqual([ready].sort());
    expect(await ids('?status=DELAYED')).toEqual([delayed, retried].sort());
    expect(await ids('?status=pending,delayed&command=job')).toEqual([ready, delayed].sort());
    expect(await ids('?status=IN_PROGRESS')).toEqual([running]);
    expect(await ids('?status=FAILED')).toEqual([done, dead].sort());
    expect(await ids('?dlq=true')).toEqual([dead]);
    expect(await ids('?dlq=true&status=COMPLETED')).toEqual([]);
    expect(await ids('?command=Other')).toEqual([running, dead].sort());
    const all = (await list('')).body.tasks as Record<string, unknown>[];
    expect(all.find((t) => t['id'] === done)).toMatchObject({ status: 'FAILED', lastError: 'boom', attempts: 1 });
    expect(all.find((t) => t['id'] === dead)).toMatchObject({ status: 'FAILED', lastKnownLocation: 'DLQ_SET', lastError: 'bad input', attempts: 1 });
    expect(all.find((t) => t['id'] === retried)).toMatchObject({ status: 'PENDING', lastKnownLocation: 'DELAYED_ZSET', lastError: 'flaky', attempts: 1 });
    expect(all.find((t) => t['id'] === ready)).not.toHaveProperty('lastError');

    const future = new Date(Date.now() + 60_000).toISOString();
    const past = new Date(Date.now() - 60_000).toISOString();
    expect(await ids(`?createdAfter=${future}`)).toEqual([]);
    expect((await ids(`?createdAfter=${past}&createdBefore=${future}`)).length).toBe(6);
    expect(await ids(`?createdBefore=${past}`)).toEqual([]);
  });

  it.each([
    ['limit=0', "invalid 'limit' (1..500)"],
    ['limit=501', "invalid 'limit' (1..500)"],
    ['limit=abc', "invalid 'limit' (1..500)"],
    ['status=DONE', "invalid 'status' (any of PENDING, DELAYED, IN_PROGRESS, COMPLETED, FAILED, CANCELLED)"],
    ['cursor=not-a-cursor', 'invalid cursor'],
    ['cursor=%25%25', 'invalid cursor'],
    ['createdAfter=yesterday', "invalid 'createdAfter' (use RFC3339)"],
    ['dlq=yes', "invalid 'dlq' (true or false)"],
  ])('answers 400 VALIDATION_FAILED for %s', async (q, message) => {
    const r = await list(`?${q}`);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'VALIDATION_FAILED', error: message });
  });
});

describe('POST /v1/codeq/tasks/:id/cancel', () => {
  it('cancels a ready or scheduled task at once: never delivered, idempotent, waiters finish CANCELLED', async () => {
    const [a] = await created(1);
    const d = (await c.create({ command: 'Job', payload: 1, delaySeconds: 1 })).body.id;
    const waiting = c.getResult(a!, T.producer, 20);
    const r = await cancel(a!);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: a, status: 'CANCELLED', lastKnownLocation: 'NONE' });
    const w = await waiting;
    expect(w.status).toBe(200);
    expect(w.body.result).toMatchObject({ taskId: a, status: 'CANCELLED' });
    expect((await cancel(d)).body.status).toBe('CANCELLED');
    expect((await cancel(a!)).status).toBe(200); // idempotent
    expect((await c.get(a!)).body.status).toBe('CANCELLED');
    await sleep(1500); // the scheduled one would be due now
    expect((await c.claim({ commands: ['Job'] })).status).toBe(204);
    expect((await admin('GET', 'queues/Job')).body).toEqual({ command: 'Job', ready: 0, delayed: 0, inProgress: 0, dlq: 0, paused: false });
    expect((await list('?status=CANCELLED')).body.tasks.map((t: { id: string }) => t.id).sort()).toEqual([a, d].sort());
  });

  it('refuses finished tasks (409), hides foreign ones (404) and lets a user producer cancel', async () => {
    const ids = await created(2);
    const a = (await c.claim({ commands: ['Job'] })).body.id as string;
    const b = ids.find((x) => x !== a);
    await c.result(a, { status: 'COMPLETED', result: {} });
    const r = await cancel(a);
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('TASK_FINISHED');
    expect((await cancel(b!, T.globexProducer)).status).toBe(404);
    expect((await cancel('no-such-task')).status).toBe(404);
    expect((await cancel(b!, T.worker)).status).toBe(401);
    expect((await cancel(b!, T.user)).body.status).toBe('CANCELLED');
  });

  it('asks the holder of an in-progress task to stop: heartbeat 409 CANCELLED, then the task is CANCELLED', async () => {
    const [a] = await created(1);
    const claimed = await c.claim({ commands: ['Job'] });
    const waiting = c.getResult(a!, T.producer, 20);
    const r = await cancel(a!);
    expect(r.body).toMatchObject({ status: 'IN_PROGRESS', cancelRequested: true });
    expect((await c.get(a!)).body.cancelRequested).toBe(true);
    expect((await cancel(a!)).body.cancelRequested).toBe(true); // idempotent
    // another worker is still told it does not own the task
    expect((await c.heartbeat(a!, {}, T.worker2)).status).toBe(403);
    const hb = await c.heartbeat(a!, { leaseId: claimed.body.leaseId });
    expect(hb.status).toBe(409);
    expect(hb.body).toMatchObject({ code: 'CANCELLED', error: 'cancelled' });
    expect((await waiting).body.result.status).toBe('CANCELLED');
    expect((await c.get(a!)).body.status).toBe('CANCELLED');
    const late = await c.result(a!, { status: 'COMPLETED', result: {} });
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('CANCELLED');
    expect((await c.getResult(a!)).body.result.status).toBe('CANCELLED');
  });

  it('refuses the holder\'s result and nack with 409 CANCELLED and ends the task CANCELLED; abandon cancels too', async () => {
    const [a, b, d] = await created(3);
    for (let i = 0; i < 3; i++) await c.claim({ commands: ['Job'] });
    for (const id of [a!, b!, d!]) await cancel(id);
    const r = await c.result(a!, { status: 'COMPLETED', result: { ok: true } });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('CANCELLED');
    const n = await c.nack(b!, { reason: 'x' });
    expect(n.status).toBe(409);
    expect(n.body.code).toBe('CANCELLED');
    const ab = await c.abandon(d!);
    expect(ab.status).toBe(200);
    expect(ab.body).toEqual({ status: 'cancelled' });
    for (const id of [a!, b!, d!]) expect((await c.get(id)).body.status).toBe('CANCELLED');
    expect((await c.getResult(a!)).body.result).toMatchObject({ status: 'CANCELLED' });
    expect((await c.claim({ commands: ['Job'] })).status).toBe(204);
  });

  it('a cancel racing a result: exactly one wins and the other is refused', async () => {
    for (let i = 0; i < 8; i++) {
      const [a] = await created(1);
      const claimed = await c.claim({ commands: ['Job'] });
      expect(claimed.body.id).toBe(a);
      const [res, can] = await Promise.all([c.result(a!, { status: 'COMPLETED', result: {} }), cancel(a!)]);
      const final = (await c.get(a!)).body.status;
      if (res.status === 200) {
        // the result landed first: the cancel saw a finished task
        expect(final).toBe('COMPLETED');
        expect(can.status).toBe(409);
        expect(can.body.code).toBe('TASK_FINISHED');
      } else {
        // the cancel landed first: the holder's result is refused and ends the task
        expect(can.status).toBe(200);
        expect(can.body.cancelRequested).toBe(true);
        expect(res.status).toBe(409);
        expect(res.body.code).toBe('CANCELLED');
        expect(final).toBe('CANCELLED');
      }
    }
  });

  it('lease expiry of a cancel-requested task ends it CANCELLED instead of retrying', async () => {
    const [a] = await created(1);
    await c.claim({ commands: ['Job'], leaseSeconds: 1 });
    await cancel(a!);
    const w = await c.getResult(a!, T.producer, 20);
    expect(w.body.result.status).toBe('CANCELLED');
    expect((await c.get(a!)).body.status).toBe('CANCELLED');
  });
});

describe('pause and resume', () => {
  it('a paused command accepts creates but hands out no claims; resume wakes a parked claim; shown in stats and commands', async () => {
    const p = await admin('POST', 'queues/Job/pause');
    expect(p.status).toBe(200);
    expect(p.body).toEqual({ command: 'Job', paused: true });
    const ids = await created(2);
    expect((await c.claim({ commands: ['Job'] })).status).toBe(204);
    expect((await c.call('POST', '/v1/codeq/tasks/claim/batch', { token: T.worker, body: { commands: ['job'], count: 5 } })).status).toBe(204);
    expect((await admin('GET', 'queues/job')).body).toMatchObject({ ready: 2, paused: true });
    // another command still flows
    await c.create({ command: 'Free', payload: 1 });
    expect((await c.claim({ commands: ['Job', 'Free'] })).body.command).toBe('Free');
    const parked = c.claim({ commands: ['Job'], waitSeconds: 20 });
    await sleep(300);
    const t0 = Date.now();
    const r = await admin('POST', 'queues/job/resume');
    expect(r.body).toEqual({ command: 'job', paused: false });
    const got = await parked;
    expect(got.status).toBe(200);
    expect(ids).toContain(got.body.id);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await admin('GET', 'queues/Job')).body.paused).toBe(false);
  });

  it('lists one row per command, including a paused command with no task; admin only', async () => {
    await created(2);
    await c.create({ command: 'Later', payload: 1, delaySeconds: 600 });
    await deadLetter('Broken', 'nope');
    await admin('POST', 'queues/Idle/pause');
    await c.create({ command: 'Job', payload: 1 }, T.globexProducer);
    const r = await admin('GET', 'commands');
    expect(r.status).toBe(200);
    expect(r.body.commands).toEqual([
      { command: 'Broken', ready: 0, delayed: 0, inProgress: 0, dlq: 1, paused: false },
      { command: 'Idle', ready: 0, delayed: 0, inProgress: 0, dlq: 0, paused: true },
      { command: 'Job', ready: 2, delayed: 0, inProgress: 0, dlq: 0, paused: false },
      { command: 'Later', ready: 0, delayed: 1, inProgress: 0, dlq: 0, paused: false },
    ]);
    expect((await admin('GET', 'commands', undefined, T.user)).status).toBe(403);
    expect((await admin('POST', 'queues/Job/pause', undefined, T.user)).status).toBe(403);
    expect((await admin('GET', 'commands', undefined, T.globexProducer)).body.commands).toEqual([{ command: 'Job', ready: 1, delayed: 0, inProgress: 0, dlq: 0, paused: false }]);
  });

  it('a pause survives a restart', async () => {
    await admin('POST', 'queues/Job/pause');
    await created(1);
    const dir = s.dir;
    await s.stop({ keepDir: true });
    s = await startServer({ retentionSeconds: 3600 }, { dir });
    c = client(s.url);
    expect((await admin('GET', 'queues/Job')).body.paused).toBe(true);
    expect((await c.claim({ commands: ['Job'] })).status).toBe(204);
    await admin('POST', 'queues/Job/resume');
    expect((await c.claim({ commands: ['Job'] })).status).toBe(200);
  });
});

describe('dead letters', () => {
  it('lists dead letters with their last error, redrives by ids once (no duplicates), adjusting counters', async () => {
    const a = await deadLetter('Gen', 'bad input a');
    const b = await deadLetter('Gen', 'bad input b');
    const other = await deadLetter('Other', 'x');
    const d = await admin('GET', 'dlq?command=gen');
    expect(d.status).toBe(200);
    expect(d.body.tasks.map((t: { id: string }) => t.id)).toEqual([b, a]);
    expect(d.body.tasks[0]).toMatchObject({ status: 'FAILED', lastKnownLocation: 'DLQ_SET', lastError: 'bad input b', attempts: 1 });
    expect(d.body.nextCursor).toBeNull();
    const page = await admin('GET', 'dlq?limit=1');
    expect(page.body.tasks).toHaveLength(1);
    expect((await admin('GET', `dlq?limit=5&cursor=${page.body.nextCursor}`)).body.tasks).toHaveLength(2);
    expect((await admin('GET', 'queues/Gen')).body.dlq).toBe(2);

    const r = await admin('POST', 'dlq/redrive', { ids: [a, a, 'missing', other] });
    expect(r.status).toBe(200);
    expect(r.body.redriven).toBe(2);
    expect(r.body.ids.sort()).toEqual([a, other].sort());
    expect((await admin('POST', 'dlq/redrive', { ids: [a] })).body).toEqual({ redriven: 0, ids: [] });
    const t = (await c.get(a)).body;
    expect(t).toMatchObject({ status: 'PENDING', lastKnownLocation: 'PENDING_LIST' });
    expect(t).not.toHaveProperty('attempts');
    expect(t).not.toHaveProperty('error');
    expect((await c.getResult(a)).status).toBe(404);
    expect((await admin('GET', 'queues/Gen')).body).toMatchObject({ ready: 1, dlq: 1 });
    // redriven: claimable again with a fresh attempt budget
    const claimed = await c.claim({ commands: ['Gen'] });
    expect(claimed.body).toMatchObject({ id: a, attempts: 1 });
    expect((await c.result(a, { status: 'COMPLETED', result: { ok: 1 } })).status).toBe(200);
  });

  it('redrives by command with a limit, oldest first, and is tenant-scoped and admin-only', async () => {
    const ids = [await deadLetter('Gen', '1'), await deadLetter('Gen', '2'), await deadLetter('Gen', '3')];
    expect((await admin('POST', 'dlq/redrive', { command: 'GEN', limit: 2 }, T.globexProducer)).body.redriven).toBe(0);
    expect((await admin('POST', 'dlq/redrive', { ids }, T.globexProducer)).body.redriven).toBe(0);
    expect((await admin('POST', 'dlq/redrive', { command: 'gen' }, T.user)).status).toBe(403);
    const r = await admin('POST', 'dlq/redrive', { command: 'GEN', limit: 2 });
    expect(r.body.redriven).toBe(2);
    expect(r.body.ids.sort()).toEqual(ids.slice(0, 2).sort());
    expect((await admin('POST', 'dlq/redrive', { command: 'Gen' })).body.ids).toEqual([ids[2]]);
    expect((await admin('POST', 'dlq/redrive', { command: 'Gen' })).body.redriven).toBe(0);
    expect((await admin('GET', 'queues/Gen')).body).toMatchObject({ ready: 3, dlq: 0 });
  });

  it.each([
    [{}, 'invalid body'],
    [{ ids: [] }, "invalid 'ids' (1..1000 ids)"],
    [{ ids: 'a' }, 'invalid body'],
    [{ ids: ['a'], command: 'x' }, 'invalid body'],
    [{ command: 'x', limit: 0 }, "invalid 'limit' (1..1000)"],
    [{ command: 'x', limit: 1001 }, "invalid 'limit' (1..1000)"],
    [{ command: ' ' }, 'invalid command'],
  ])('refuses redrive body %j with 400', async (body, message) => {
    const r = await admin('POST', 'dlq/redrive', body);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'VALIDATION_FAILED', error: message });
  });
});

describe('metrics', () => {
  it('counts cancelled and redriven tasks and shows paused commands', async () => {
    const [a] = await created(1);
    await cancel(a!);
    const dead = await deadLetter('Gen', 'x');
    await admin('POST', 'dlq/redrive', { ids: [dead] });
    await admin('POST', 'queues/Gen/pause');
    const m = (await c.call('GET', '/metrics')).text;
    expect(m).toMatch(/^codeq_tasks_cancelled_total\{command="Job"\} 1$/m);
    expect(m).toMatch(/^codeq_tasks_redriven_total\{command="Gen"\} 1$/m);
    expect(m).toMatch(/^codeq_queue_paused\{command="Gen"\} 1$/m);
    expect(m).toMatch(/^codeq_queue_paused\{command="Job"\} 0$/m);
  });
});
