/** Result callbacks to a real local HTTP receiver: signature, retries after 500s, timeouts. */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { client, sleep, startServer, type RunningServer } from './harness.js';

interface Hit {
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

let receiver: Server;
let url: string;
let hits: Hit[] = [];
let respond: (n: number, res: ServerResponse) => void = (_n, res) => res.end('ok');
let s: RunningServer;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      hits.push({ headers: req.headers, body, at: Date.now() });
      respond(hits.length, res);
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise<void>((r) => receiver.close(() => r()));
});
beforeEach(() => {
  hits = [];
  respond = (_n, res) => res.end('ok');
});
afterEach(async () => {
  await s.stop();
});

async function until(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(20);
}

describe('result webhooks', () => {
  it('delivers the result with a verifiable HMAC signature', async () => {
    s = await startServer({ webhookHmacSecret: 's3cret', webhookAllowPrivate: true }); // the receiver is on loopback
    const c = client(s.url);
    const id = (await c.create({ command: 'hook', payload: 1, webhook: url })).body.id;
    await c.claim({ commands: ['hook'] });
    await c.result(id, { status: 'COMPLETED', result: { ok: true } });
    await until(() => hits.length === 1);
    const hit = hits[0]!;
    const body = JSON.parse(hit.body);
    expect(body).toEqual({ taskId: id, eventType: 'hook', status: 'COMPLETED', result: { ok: true }, error: '', artifacts: null, completedAt: expect.any(String) });
    const ts = hit.headers['x-codeq-timestamp'] as string;
    expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(5);
    expect(hit.headers['x-codeq-signature']).toBe(createHmac('sha256', 's3cret').update(`${ts}.${hit.body}`).digest('hex'));
    const m = await c.call('GET', '/metrics');
    await until(() => true, 50);
    expect((await c.call('GET', '/metrics')).text).toContain('codeq_webhook_deliveries_total{kind="task_result",command="hook",outcome="success"} 1');
    expect(m.status).toBe(200);
  });

  it('retries after 500s with backoff, then succeeds', async () => {
    s = await startServer({ resultWebhookBaseBackoffSeconds: 0, webhookAllowPrivate: true });
    respond = (n, res) => {
      res.statusCode = n < 3 ? 500 : 200;
      res.end();
    };
    const c = client(s.url);
    const id = (await c.create({ command: 'hook2', payload: 1, webhook: url })).body.id;
    await c.claim({ commands: ['hook2'] });
    await c.nack(id, { delaySeconds: 1 }); // not terminal: no callback
    await sleep(200);
    expect(hits).toHaveLength(0);
    const again = await c.claim({ commands: ['hook2'], waitSeconds: 3 });
    expect(again.body.id).toBe(id);
    await c.result(id, { status: 'FAILED', error: 'boom' });
    await until(() => hits.length === 3);
    expect(hits).toHaveLength(3);
    expect(hits.map((h) => JSON.parse(h.body).taskId)).toEqual([id, id, id]);
    expect(JSON.parse(hits[2]!.body)).toMatchObject({ status: 'FAILED', error: 'boom' });
    await sleep(100);
    expect(hits).toHaveLength(3); // no more attempts after the success
  });

  it('gives up after the configured attempts, timing out slow receivers, and fires for dead-letters', async () => {
    s = await startServer({ resultWebhookBaseBackoffSeconds: 0, resultWebhookMaxAttempts: 3, webhookTimeoutMs: 300, backoffPolicy: 'fixed', backoffBaseSeconds: 0, webhookAllowPrivate: true });
    respond = () => undefined; // never answers: every attempt times out
    const c = client(s.url);
    const id = (await c.create({ command: 'hook3', payload: 1, webhook: url, maxAttempts: 1 })).body.id;
    await c.claim({ commands: ['hook3'] });
    const n = await c.nack(id, { reason: 'fatal-test' });
    expect(n.body.status).toBe('dlq');
    await until(() => hits.length === 3, 5000);
    expect(hits).toHaveLength(3);
    expect(JSON.parse(hits[0]!.body)).toMatchObject({ taskId: id, status: 'FAILED', error: 'fatal-test', result: null });
    await until(() => false, 400);
    expect((await c.call('GET', '/metrics')).text).toContain('codeq_webhook_deliveries_total{kind="task_result",command="hook3",outcome="failure"} 1');
  });
});
