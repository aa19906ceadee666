/**
 * Retries through a server restart never duplicate a task: the first create reaches the server
 * and is committed, its answer is lost while the server restarts, and the SDK's retry (same
 * idempotency key) gets the same task from the restarted server.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProducer } from '../src/index.js';
import { api, startServer, TOKEN, type TestServer } from '@codeq/testkit';

/** Forwards to `target`; the first create's answer is withheld, `onFirstCreate` runs, then the client's connection is cut. */
async function lossyProxy(target: () => string, onFirstCreate: () => Promise<void>) {
  let cut = false;
  const creates: string[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const isCreate = req.method === 'POST' && req.url === '/v1/codeq/tasks';
      if (isCreate) creates.push(body.toString());
      const up = http.request(target() + (req.url ?? '/'), { method: req.method, headers: { ...req.headers, connection: 'close' } }, (ures) => {
        const out: Buffer[] = [];
        ures.on('data', (c: Buffer) => out.push(c));
        ures.on('end', () => {
          if (isCreate && !cut) {
            cut = true;
            void onFirstCreate().finally(() => req.socket.destroy());
            return;
          }
          res.writeHead(ures.statusCode ?? 502, ures.headers);
          res.end(Buffer.concat(out));
        });
      });
      up.on('error', () => req.socket.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    creates,
    close: () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))),
  };
}

let server: TestServer | undefined;
afterEach(async () => {
  await server?.dispose();
  server = undefined;
});

describe('producer retries across a server restart', () => {
  it('a lost answer during a restart yields exactly one task', async () => {
    const s = (server = await startServer());
    const proxy = await lossyProxy(() => s.url, () => s.restart());
    const producer = createProducer({ baseUrl: proxy.url, token: TOKEN, retry: { initialMs: 50, maxMs: 500 } });
    try {
      const task = await producer.submit('restart.once', { order: 42 });
      expect(proxy.creates.length).toBeGreaterThanOrEqual(2);
      const keys = new Set(proxy.creates.map((b) => JSON.parse(b).idempotencyKey));
      expect(keys.size).toBe(1);
      expect((await api(s.url, 'GET', '/admin/queues/restart.once')).body).toMatchObject({ ready: 1 });
      expect((await api(s.url, 'GET', `/tasks/${task.id}`)).body).toMatchObject({ id: task.id, payload: '{"order":42}' });
    } finally {
      await producer.close();
      await proxy.close();
    }
  }, 30_000);

  it('a submit made while the server is down completes once it is back', async () => {
    const s = (server = await startServer());
    await s.stop();
    const producer = createProducer({ baseUrl: s.url, token: TOKEN, retry: { initialMs: 100, maxMs: 400, maxAttempts: 40 } });
    try {
      const pending = producer.submit('while.down', { n: 1 });
      setTimeout(() => void s.restart(), 800);
      const task = await pending;
      expect(task.status).toBe('PENDING');
      expect((await api(s.url, 'GET', '/admin/queues/while.down')).body).toMatchObject({ ready: 1 });
    } finally {
      await producer.close();
    }
  }, 30_000);

  it('without retries the caller sees UNAVAILABLE with a connection hint', async () => {
    const s = (server = await startServer());
    await s.stop();
    const producer = createProducer({ baseUrl: s.url, token: TOKEN, retry: false });
    await expect(producer.submit('x', {})).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      details: { network: true, errno: 'ECONNREFUSED' },
      message: expect.stringContaining(`cannot reach the codeQ server at ${s.url}`),
    });
    await producer.close();
  });
});
