/**
 * Issue 12 item 10: metric `command` labels are capped (later commands fold into `other`), and an
 * optional bearer token protects /metrics.
 */
import { call, client, startServer } from './harness.js';

describe('/metrics bounds and token (issue 12 item 10)', () => {
  it('folds commands beyond metricsMaxCommands into "other"', async () => {
    const srv = await startServer({ metricsMaxCommands: 3 });
    try {
      const c = client(srv.url);
      for (const cmd of ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']) expect((await c.create({ command: cmd, payload: {} })).status).toBe(202);
      const text = (await call(srv.url, 'GET', '/metrics')).text;
      const created = text.split('\n').filter((l) => l.startsWith('codeq_task_created_total{'));
      const labels = created.map((l) => /command="([^"]*)"/.exec(l)![1]);
      expect(labels.sort()).toEqual(['m1', 'm2', 'm3', 'other']);
      expect(created.find((l) => l.includes('command="other"'))).toMatch(/ 3$/);
      const depth = text.split('\n').filter((l) => l.startsWith('codeq_queue_depth{') && l.includes('queue="ready"'));
      expect(depth.map((l) => /command="([^"]*)"/.exec(l)![1]).sort()).toEqual(['m1', 'm2', 'm3', 'other']);
      expect(depth.find((l) => l.includes('command="other"'))).toMatch(/ 3$/);
    } finally {
      await srv.stop();
    }
  });

  it('counts created, claimed and completed tasks exactly across several scrapes (per-task counts are added at read time)', async () => {
    const srv = await startServer();
    try {
      const c = client(srv.url);
      const value = async (name: string, labels: string): Promise<number> => {
        const line = (await call(srv.url, 'GET', '/metrics')).text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
        return line ? Number(line.split(' ').pop()) : 0;
      };
      for (let i = 0; i < 3; i++) expect((await c.create({ command: 'mc', payload: { i } })).status).toBe(202);
      expect(await value('codeq_task_created_total', 'command="mc"')).toBe(3);
      expect(await value('codeq_task_created_total', 'command="mc"')).toBe(3); // a second read adds nothing
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const claimed = await c.claim({ commands: ['mc'] });
        expect(claimed.status).toBe(200);
        ids.push((claimed.body as { id: string }).id);
      }
      expect((await c.result(ids[0]!, { status: 'COMPLETED', result: { ok: true } })).status).toBe(200);
      for (let i = 0; i < 2; i++) expect((await c.create({ command: 'mc', payload: { i } })).status).toBe(202);
      expect(await value('codeq_task_created_total', 'command="mc"')).toBe(5);
      expect(await value('codeq_task_claimed_total', 'command="mc"')).toBe(2);
      expect(await value('codeq_task_completed_total', 'command="mc",status="COMPLETED"')).toBe(1);
      expect(await value('codeq_task_processing_latency_seconds_count', 'command="mc",status="COMPLETED"')).toBe(1);
    } finally {
      await srv.stop();
    }
  });

  it('requires the bearer token when metricsToken is set', async () => {
    const token = 'metrics-token-0123456789';
    const srv = await startServer({ metricsToken: token });
    try {
      const none = await call(srv.url, 'GET', '/metrics');
      expect(none.status).toBe(401);
      expect(none.body.code).toBe('UNAUTHENTICATED');
      expect(none.text).not.toContain(token);
      expect((await call(srv.url, 'GET', '/metrics', { token: 'metrics-token-0123456788' })).status).toBe(401);
      const ok = await call(srv.url, 'GET', '/metrics', { token });
      expect(ok.status).toBe(200);
      expect(ok.text).toContain('codeq_task_created_total');
      expect((await call(srv.url, 'GET', '/readyz')).status).toBe(200); // probes stay open
    } finally {
      await srv.stop();
    }
  });
});
