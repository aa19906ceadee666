/**
 * Issue 12 item 9: a tenant holds at most 1000 live subscriptions (429 above, other tenants
 * unaffected); expired ones free their slot. Queue-ready notifications are sent at most
 * MAX_NOTIFICATIONS_IN_FLIGHT at once (counted at a slow local receiver); the rest are dropped and
 * counted.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_NOTIFICATIONS_IN_FLIGHT } from '../src/modules/webhooks/subscriptions.service.js';
import { client, sleep, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer | null = null;
afterEach(async () => {
  await s?.stop();
  s = null;
});

async function fill(sub: (token: string) => Promise<{ status: number }>, n: number): Promise<void> {
  for (let i = 0; i < n; i += 50) {
    const rs = await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => sub(T.worker)));
    expect(rs.every((r) => r.status < 300)).toBe(true);
  }
}

describe('subscription bounds (issue 12 item 9)', () => {
  it('caps live subscriptions per tenant', async () => {
    s = await startServer();
    const c = client(s.url);
    const sub = (token: string, ttlSeconds = 60) =>
      c.call('POST', '/v1/codeq/workers/subscriptions', { token, body: { callbackUrl: 'https://hooks.example.com/ready', eventTypes: ['cap'], ttlSeconds } });
    await fill(sub, 1000);
    const over = await sub(T.worker);
    expect(over.status).toBe(429);
    expect(over.body.code).toBe('RATE_LIMITED');
    expect((await sub(T.globexWorker)).status).toBeLessThan(300); // another tenant
  }, 60_000);

  it('frees the slots of expired subscriptions', async () => {
    s = await startServer();
    const c = client(s.url);
    const sub = (token: string, ttlSeconds = 10) =>
      c.call('POST', '/v1/codeq/workers/subscriptions', { token, body: { callbackUrl: 'https://hooks.example.com/ready', eventTypes: ['cap'], ttlSeconds } });
    const started = Date.now();
    await fill(sub, 1000);
    const over = await sub(T.worker);
    // Still full while the first ones live (checked only if the box filled them well within their TTL).
    if (Date.now() - started < 8000) expect(over.status).toBe(429);
    await sleep(Math.max(0, started + 11_000 - Date.now()));
    expect((await sub(T.worker)).status).toBeLessThan(300);
  }, 60_000);

  it(`sends at most ${MAX_NOTIFICATIONS_IN_FLIGHT} queue-ready notifications at once and counts the dropped ones`, async () => {
    let open = 0;
    let maxOpen = 0;
    let received = 0;
    const receiver: Server = createServer((req, res) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      received++;
      req.resume();
      res.once('close', () => open--);
      setTimeout(() => res.end('ok'), 1500);
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/ready`;
      s = await startServer({ webhookAllowPrivate: true, webhookTimeoutMs: 30_000 });
      const c = client(s.url);
      const n = MAX_NOTIFICATIONS_IN_FLIGHT + 36;
      await fill((token) => c.call('POST', '/v1/codeq/workers/subscriptions', { token, body: { callbackUrl: url, eventTypes: ['burst'], ttlSeconds: 120 } }), n);
      expect((await c.create({ command: 'burst', payload: {} })).status).toBe(202);
      const end = Date.now() + 20_000;
      while ((received < MAX_NOTIFICATIONS_IN_FLIGHT || open > 0) && Date.now() < end) await sleep(25);
      await sleep(300);
      expect(maxOpen).toBe(MAX_NOTIFICATIONS_IN_FLIGHT);
      expect(received).toBe(MAX_NOTIFICATIONS_IN_FLIGHT);
      const text = (await c.call('GET', '/metrics')).text;
      expect(text).toContain(`codeq_webhook_deliveries_total{kind="queue_ready",command="burst",outcome="dropped"} ${n - MAX_NOTIFICATIONS_IN_FLIGHT}`);
      expect(text).toContain(`codeq_webhook_deliveries_total{kind="queue_ready",command="burst",outcome="success"} ${MAX_NOTIFICATIONS_IN_FLIGHT}`);
    } finally {
      receiver.closeAllConnections();
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  }, 90_000);
});
