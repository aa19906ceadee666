/**
 * Issue 12 item 5: uploaded artifacts are written under a temporary name and renamed after the
 * commit; they are deleted with their task by retention/cleanup; an identical resubmission (same
 * lease) replays with 200, not 409.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { client, sleep, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer | null = null;
afterEach(async () => {
  await s?.stop();
  s = null;
});

const body = (leaseId: string) => ({
  status: 'COMPLETED',
  result: { ok: true },
  leaseId,
  artifacts: [{ name: 'report.txt', contentBase64: Buffer.from('hello').toString('base64'), contentType: 'text/plain' }],
});

describe('artifacts (issue 12 item 5)', () => {
  it('replays an identical resubmission with artifacts (200) and leaves no temporary files', async () => {
    s = await startServer();
    const c = client(s.url);
    const t = await c.create({ command: 'art', payload: {} });
    const claimed = await c.claim({ commands: ['art'] });
    const first = await c.result(t.body.id, body(claimed.body.leaseId));
    expect(first.status).toBe(200);
    const again = await c.result(t.body.id, body(claimed.body.leaseId));
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const dir = join(s.dir, 'artifacts', 'results', t.body.id);
    expect(readdirSync(dir)).toEqual(['report.txt']);
    expect(readFileSync(join(dir, 'report.txt'), 'utf8')).toBe('hello');
    const got = await c.call('GET', `/v1/codeq/tasks/${t.body.id}/artifacts/report.txt`, { token: T.producer });
    expect([got.status, got.text]).toEqual([200, 'hello']);
    // A refused result (another lease) writes nothing.
    const t2 = await c.create({ command: 'art', payload: {} });
    await c.claim({ commands: ['art'] });
    const refused = await c.result(t2.body.id, body('not-the-lease'));
    expect(refused.status).toBe(409);
    const dir2 = join(s.dir, 'artifacts', 'results', t2.body.id);
    expect(existsSync(dir2) ? readdirSync(dir2) : []).toEqual([]);
  });

  it('deletes artifacts with their task (cleanup / retention)', async () => {
    s = await startServer({ retentionSeconds: 0 });
    const c = client(s.url);
    const t = await c.create({ command: 'art2', payload: {} });
    const claimed = await c.claim({ commands: ['art2'] });
    expect((await c.result(t.body.id, body(claimed.body.leaseId))).status).toBe(200);
    const dir = join(s.dir, 'artifacts', 'results', t.body.id);
    expect(existsSync(join(dir, 'report.txt'))).toBe(true);
    await sleep(1100);
    const r = await c.call('POST', '/v1/codeq/admin/tasks/cleanup', { token: T.producer, body: {} });
    expect(r.status).toBe(200);
    expect((await c.get(t.body.id)).status).toBe(404);
    expect(existsSync(dir)).toBe(false);
  });
});
