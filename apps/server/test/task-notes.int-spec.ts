/**
 * Task notes over real HTTP (issue 17 item 3): the holder's progress on GET /tasks/:id, the
 * bounded per-task log, lease fencing, tenant isolation, reset on a new attempt, restart, purge.
 */
import { call, client, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer;
let c: ReturnType<typeof client>;
beforeEach(async () => {
  s = await startServer();
  c = client(s.url);
});
afterEach(async () => {
  await s?.stop();
});

const progress = (id: string, body: unknown, token: string = T.worker) => c.call('POST', `/v1/codeq/tasks/${id}/progress`, { token, body });
const appendLogs = (id: string, body: unknown, token: string = T.worker) => c.call('POST', `/v1/codeq/tasks/${id}/logs`, { token, body });
const logs = (id: string, query = '', token: string = T.producer) => c.call('GET', `/v1/codeq/tasks/${id}/logs${query}`, { token });

async function claimed(command = 'notes'): Promise<{ id: string; leaseId: string }> {
  await c.create({ command, payload: {} });
  const r = await c.claim({ commands: [command] });
  expect(r.status).toBe(200);
  return { id: r.body.id, leaseId: r.body.leaseId };
}

describe('progress', () => {
  it('stores the holder’s latest value on the task; absent until set', async () => {
    const t = await claimed();
    expect((await c.get(t.id)).body).not.toHaveProperty('progress');
    expect((await progress(t.id, { progress: 10, leaseId: t.leaseId })).body).toEqual({ ok: true });
    expect((await c.get(t.id)).body.progress).toBe(10);
    expect((await progress(t.id, { progress: { done: 3, total: 7, stage: 'upload' }, leaseId: t.leaseId })).status).toBe(200);
    expect((await c.get(t.id)).body.progress).toEqual({ done: 3, total: 7, stage: 'upload' });
    // Also readable with the worker's token, and after the task finished.
    expect((await c.get(t.id, T.worker)).body.progress).toEqual({ done: 3, total: 7, stage: 'upload' });
    await c.result(t.id, { status: 'COMPLETED', result: {}, leaseId: t.leaseId });
    expect((await c.get(t.id)).body).toMatchObject({ status: 'COMPLETED', progress: { done: 3, total: 7, stage: 'upload' } });
  });

  it.each([
    ['a string', { progress: '50%' }],
    ['null', { progress: null }],
    ['missing', {}],
    ['an array', { progress: [1, 2] }],
    ['over 4 KiB of JSON', { progress: { blob: 'x'.repeat(4100) } }],
    ['not an object body', [1]],
  ])('answers 400 for %s and changes nothing', async (_name, body) => {
    const t = await claimed();
    await progress(t.id, { progress: 1, leaseId: t.leaseId });
    const r = await progress(t.id, { ...(Array.isArray(body) ? {} : body), leaseId: t.leaseId });
    if (Array.isArray(body)) {
      const raw = await progress(t.id, body);
      expect(raw.status).toBe(400);
    } else {
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
      expect(r.body.error).toMatch(/progress|invalid body/);
    }
    expect((await c.get(t.id)).body.progress).toBe(1);
  });

  it('is lease-fenced like a heartbeat and tenant-scoped', async () => {
    const t = await claimed();
    expect((await progress(t.id, { progress: 5, leaseId: 'not-the-lease' })).body.code).toBe('LEASE_NOT_HELD');
    const other = await progress(t.id, { progress: 5 }, T.worker2);
    expect([other.status, other.body.code]).toEqual([403, 'NOT_OWNER']);
    const foreign = await progress(t.id, { progress: 5 }, T.globexWorker);
    expect([foreign.status, foreign.body.code]).toEqual([404, 'TASK_NOT_FOUND']);
    expect((await c.get(t.id)).body).not.toHaveProperty('progress');
    // A producer token cannot report progress.
    expect((await progress(t.id, { progress: 5 }, T.producer)).status).toBeGreaterThanOrEqual(401);
    const pending = (await c.create({ command: 'idle', payload: {} })).body.id;
    expect((await progress(pending, { progress: 5 })).status).toBe(403);
  });

  it('starts again with no progress on the next attempt, and survives a restart', async () => {
    const t = await claimed();
    await progress(t.id, { progress: 80, leaseId: t.leaseId });
    await s.stop({ keepDir: true });
    s = await startServer({}, { dir: s.dir });
    c = client(s.url);
    expect((await c.get(t.id)).body.progress).toBe(80);
    await c.nack(t.id, { leaseId: t.leaseId, delaySeconds: 1, reason: 'again' });
    // Until the next delivery the last attempt's value still shows.
    expect((await c.get(t.id)).body.progress).toBe(80);
    const again = await c.claim({ commands: ['notes'], waitSeconds: 10 });
    expect(again.body).toMatchObject({ id: t.id, attempts: 2 });
    expect((await c.get(t.id)).body).not.toHaveProperty('progress');
    await progress(t.id, { progress: 1, leaseId: again.body.leaseId });
    expect((await c.get(t.id)).body.progress).toBe(1);
  });
});

describe('logs', () => {
  it('appends lines, truncates long ones, reads them back in order with paging', async () => {
    const t = await claimed();
    const long = 'é'.repeat(3000);
    const r = await appendLogs(t.id, { leaseId: t.leaseId, lines: ['starting', { level: 'warn', message: 'slow disk' }, long] });
    expect(r.body).toEqual({ ok: true, lines: 3 });
    const got = await logs(t.id);
    expect(got.status).toBe(200);
    expect(got.body.taskId).toBe(t.id);
    expect(got.body.lines.map((l: { n: number; level: string; attempt: number }) => [l.n, l.level, l.attempt])).toEqual([[1, 'info', 1], [2, 'warn', 1], [3, 'info', 1]]);
    expect(got.body.lines[0].message).toBe('starting');
    expect(got.body.lines[0].at).toMatch(/^\d{4}-\d\d-\d\dT/);
    const cut: string = got.body.lines[2].message;
    expect(cut.endsWith('…[truncated]')).toBe(true);
    expect(Buffer.byteLength(cut, 'utf8')).toBeLessThanOrEqual(2048);
    expect(cut.startsWith('éé')).toBe(true);
    expect((await logs(t.id, '?after=1&limit=1')).body.lines.map((l: { message: string }) => l.message)).toEqual(['slow disk']);
    expect((await logs(t.id, '?limit=0')).status).toBe(400);
    expect((await logs(t.id, '?after=x')).status).toBe(400);
    // The worker's token reads them too.
    expect((await logs(t.id, '', T.worker)).body.lines).toHaveLength(3);
  });

  it('keeps the last 200 lines of a task', async () => {
    const t = await claimed();
    for (let b = 0; b < 3; b++) {
      const lines = Array.from({ length: 100 }, (_, i) => `line ${b * 100 + i + 1}`);
      expect((await appendLogs(t.id, { leaseId: t.leaseId, lines })).status).toBe(200);
    }
    const got = (await logs(t.id)).body.lines as { n: number; message: string }[];
    expect(got).toHaveLength(200);
    expect([got[0]!.n, got[0]!.message, got[199]!.n, got[199]!.message]).toEqual([101, 'line 101', 300, 'line 300']);
  });

  it.each([
    ['no lines', { lines: [] }],
    ['too many lines', { lines: Array.from({ length: 101 }, () => 'x') }],
    ['a bad level', { lines: [{ level: 'fatal', message: 'x' }] }],
    ['a line without message', { lines: [{ level: 'info' }] }],
    ['a number line', { lines: [5] }],
  ])('answers 400 for %s and stores nothing', async (_name, body) => {
    const t = await claimed();
    const r = await appendLogs(t.id, { ...body, leaseId: t.leaseId });
    expect([r.status, r.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect((await logs(t.id)).body.lines).toEqual([]);
  });

  it('is lease-fenced and tenant-scoped; 404 for unknown and foreign tasks; deleted with the task', async () => {
    const t = await claimed();
    expect((await appendLogs(t.id, { leaseId: 'nope', lines: ['x'] })).body.code).toBe('LEASE_NOT_HELD');
    expect((await appendLogs(t.id, { lines: ['x'] }, T.worker2)).body.code).toBe('NOT_OWNER');
    expect((await appendLogs(t.id, { lines: ['x'] }, T.globexWorker)).status).toBe(404);
    await appendLogs(t.id, { leaseId: t.leaseId, lines: ['mine'] });
    const foreign = await logs(t.id, '', T.globexProducer);
    expect([foreign.status, foreign.body.code]).toEqual([404, 'TASK_NOT_FOUND']);
    expect((await logs('00000000-0000-0000-0000-000000000000')).status).toBe(404);
    const done = await c.result(t.id, { status: 'COMPLETED', result: {}, leaseId: t.leaseId });
    expect(done.body).toMatchObject({ status: 'COMPLETED' });
    // After the result the lease is gone: no more lines.
    expect((await appendLogs(t.id, { leaseId: t.leaseId, lines: ['late'] })).status).toBe(409);
    expect((await logs(t.id)).body.lines.map((l: { message: string }) => l.message)).toEqual(['mine']);
    const future = new Date(Date.now() + 10 * 365 * 86400_000).toISOString(); // past any retention
    const purge = await call(s.url, 'POST', '/v1/codeq/admin/tasks/cleanup', { token: T.producer, body: { before: future, limit: 10 } });
    expect(purge.body).toMatchObject({ deleted: 1 });
    expect((await logs(t.id)).status).toBe(404);
  });
});
