import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProducer } from './producer.js';

/** A scripted stand-in for the server: each request gets the next answer. */
async function scripted(answer: (req: { method: string; url: string; body: any }, n: number) => { status: number; body?: unknown }) {
  const seen: Array<{ method: string; url: string; body: any }> = [];
  const srv = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', body: raw ? JSON.parse(raw) : undefined };
      seen.push(r);
      const a = answer(r, seen.length);
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.body === undefined ? '' : JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))) };
}

const task = (id: string, extra: Record<string, unknown> = {}) => ({ id, command: 'x', payload: '{}', status: 'PENDING', createdAt: 't', updatedAt: 't', ...extra });
const retry = { initialMs: 1, maxMs: 5 };

describe('createProducer', () => {
  it('retries a submit with one idempotency key fixed before the first attempt', async () => {
    const s = await scripted((_r, n) => (n < 3 ? { status: 503, body: { error: 'service unavailable', code: 'UNAVAILABLE' } } : { status: 202, body: task('t1') }));
    const p = createProducer({ baseUrl: s.url, token: 't', retry });
    try {
      const t = await p.submit('x', { a: 1 }, { priority: 3, runAt: new Date('2030-01-02T03:04:05Z'), maxAttempts: 2, webhook: 'http://h/x' });
      expect(t.id).toBe('t1');
      expect(s.seen).toHaveLength(3);
      const keys = new Set(s.seen.map((r) => r.body.idempotencyKey));
      expect(keys.size).toBe(1);
      expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
      expect(s.seen[0]!.body).toMatchObject({ command: 'x', payload: { a: 1 }, priority: 3, runAt: '2030-01-02T03:04:05.000Z', maxAttempts: 2, webhook: 'http://h/x' });
    } finally {
      await p.close();
      await s.close();
    }
  });

  it("keeps the caller's idempotency key and does not retry 4xx", async () => {
    const s = await scripted(() => ({ status: 400, body: { error: 'invalid command', code: 'VALIDATION_FAILED' } }));
    const p = createProducer({ baseUrl: s.url, token: 't', retry });
    try {
      await expect(p.submit(' ', null, { idempotencyKey: 'mine' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: 'invalid command', details: { httpStatus: 400 } });
      expect(s.seen).toHaveLength(1);
      expect(s.seen[0]!.body.idempotencyKey).toBe('mine');
    } finally {
      await p.close();
      await s.close();
    }
  });

  it('submits many in chunks of 100 with a key per item and keeps input order', async () => {
    const s = await scripted((r) => ({
      status: 200,
      body: { results: r.body.tasks.map((t: any) => (t.command === 'bad' ? { error: 'invalid command' } : { task: task(`${t.payload.i}`, { command: t.command }) })) },
    }));
    const p = createProducer({ baseUrl: s.url, token: 't', retry });
    try {
      const items = Array.from({ length: 250 }, (_, i) => ({ command: i === 7 ? 'bad' : 'x', payload: { i } }));
      const out = await p.submitMany(items);
      expect(s.seen.map((r) => r.body.tasks.length)).toEqual([100, 100, 50]);
      expect(out).toHaveLength(250);
      expect(out[7]).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED', message: 'invalid command' } });
      expect(out[249]).toMatchObject({ ok: true, task: { id: '249' } });
      const keys = s.seen.flatMap((r) => r.body.tasks.map((t: any) => t.idempotencyKey));
      expect(new Set(keys).size).toBe(250);
    } finally {
      await p.close();
      await s.close();
    }
  });

  it('waitForResult polls until a result exists', async () => {
    const s = await scripted((_r, n) =>
      n < 3
        ? { status: 404, body: { error: 'result not found', code: 'RESULT_NOT_FOUND' } }
        : { status: 200, body: { task: task('t1', { status: 'COMPLETED' }), result: { taskId: 't1', status: 'COMPLETED', result: { ok: true }, completedAt: 't' } } },
    );
    const p = createProducer({ baseUrl: s.url, token: 't', retry });
    try {
      const r = await p.waitForResult('t1', { timeoutMs: 5000 });
      expect(r.result).toMatchObject({ status: 'COMPLETED', result: { ok: true } });
      expect(s.seen[0]!.url).toBe('/v1/codeq/tasks/t1/result?waitSeconds=5');
    } finally {
      await p.close();
      await s.close();
    }
  });

  it('waitForResult gives up at the deadline with RESULT_NOT_FOUND', async () => {
    const s = await scripted(() => ({ status: 404, body: { error: 'result not found', code: 'RESULT_NOT_FOUND' } }));
    const p = createProducer({ baseUrl: s.url, token: 't', retry });
    try {
      const started = Date.now();
      await expect(p.waitForResult('t1', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'RESULT_NOT_FOUND', details: { timedOut: true, taskId: 't1' } });
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await p.close();
      await s.close();
    }
  });

  it('waitForResult fails fast on an unknown task', async () => {
    const s = await scripted(() => ({ status: 404, body: { error: 'task not found', code: 'TASK_NOT_FOUND' } }));
    const p = createProducer({ baseUrl: s.url, token: 't', retry });
    try {
      await expect(p.waitForResult('nope', { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'TASK_NOT_FOUND' });
      expect(s.seen).toHaveLength(1);
    } finally {
      await p.close();
      await s.close();
    }
  });
});
