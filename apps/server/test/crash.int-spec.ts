/**
 * Nothing acknowledged is lost: SIGKILL the server while clients create and complete tasks, restart
 * it on the same directory, and check every acknowledged create and result.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_SCOPES, call } from './harness.js';
import { spawnServer } from './process.js';

const env = (dir: string) => ({
  PERSISTENCE_PROVIDER: 'sqlite',
  PERSISTENCE_CONFIG: JSON.stringify({ path: join(dir, 'data'), fsyncOnCommit: false }),
  PRODUCER_AUTH_PROVIDER: 'static',
  PRODUCER_AUTH_CONFIG: JSON.stringify({ token: 'p', subject: 'producer', raw: { tid: 'crash', role: 'ADMIN' } }),
  WORKER_AUTH_PROVIDER: 'static',
  WORKER_AUTH_CONFIG: JSON.stringify({ token: 'w', subject: 'worker', scopes: ALL_SCOPES, eventTypes: ['*'], raw: { tid: 'crash' } }),
});

// SQLite only: these processes run the embedded engine on a data directory (whatever the pass), so
// the PostgreSQL pass of scripts/test.sh would only repeat them; SIGKILL durability on PostgreSQL is
// covered by test/replicas.int-spec.ts.
(process.env['CODEQ_TEST_PG_URL'] ? describe.skip : describe)('crash safety', () => {
  it('keeps every acknowledged create and result across SIGKILL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-crash-'));
    try {
      const srv = await spawnServer(env(dir));
      const created: string[] = [];
      const completed: string[] = [];
      let stop = false;
      const producer = async () => {
        for (let i = 0; !stop && i < 100_000; i++) {
          try {
            const r = await call(srv.url, 'POST', '/v1/codeq/tasks', { token: 'p', body: { command: 'crash', payload: { i } } });
            if (r.status === 202) created.push(r.body.id);
          } catch {
            return; // connection refused/reset after the kill: not acknowledged
          }
        }
      };
      const worker = async () => {
        for (let i = 0; !stop && i < 100_000; i++) {
          try {
            const t = await call(srv.url, 'POST', '/v1/codeq/tasks/claim', { token: 'w', body: { commands: ['crash'], waitSeconds: 1 } });
            if (t.status !== 200) continue;
            const r = await call(srv.url, 'POST', `/v1/codeq/tasks/${t.body.id}/result`, { token: 'w', body: { status: 'COMPLETED', result: { i } } });
            if (r.status === 200) completed.push(t.body.id);
          } catch {
            return;
          }
        }
      };
      const loops = [...Array.from({ length: 8 }, producer), ...Array.from({ length: 8 }, worker)];
      await new Promise((r) => setTimeout(r, 1500));
      srv.child.kill('SIGKILL');
      await srv.exited;
      stop = true;
      await Promise.all(loops);
      expect(created.length).toBeGreaterThan(100);
      expect(completed.length).toBeGreaterThan(20);

      const again = await spawnServer(env(dir));
      try {
        const missing: string[] = [];
        for (const id of created) {
          const r = await call(again.url, 'GET', `/v1/codeq/tasks/${id}`, { token: 'p' });
          if (r.status !== 200) missing.push(id);
        }
        expect(missing).toEqual([]);
        const notDone: string[] = [];
        for (const id of completed) {
          const r = await call(again.url, 'GET', `/v1/codeq/tasks/${id}/result`, { token: 'p' });
          if (r.status !== 200 || r.body.result.status !== 'COMPLETED') notDone.push(id);
        }
        expect(notDone).toEqual([]);
      } finally {
        again.child.kill('SIGTERM');
        await again.exited;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('shuts down gracefully on SIGTERM: in-flight long-polls end, exit code 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-term-'));
    try {
      const srv = await spawnServer(env(dir));
      const waiting = call(srv.url, 'POST', '/v1/codeq/tasks/claim', { token: 'w', body: { commands: ['idle'], waitSeconds: 30 } });
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      srv.child.kill('SIGTERM');
      const r = await waiting;
      expect(r.status).toBe(204);
      expect(await srv.exited).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(srv.output()).toContain('stopped');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('refuses to start with a bad configuration value, naming the key', async () => {
    await expect(spawnServer({ PORT: 'abc', PERSISTENCE_CONFIG: '{"path":5}' })).rejects.toThrow(/PERSISTENCE_CONFIG/);
  }, 30_000);
});
