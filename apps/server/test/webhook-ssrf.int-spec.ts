/**
 * Issue 12 item 12: by default webhooks and subscription callbacks never reach loopback,
 * link-local or private addresses (IP literals, and names resolving to them: the resolved address
 * is checked and pinned); CODEQ_WEBHOOK_ALLOW_PRIVATE=true allows internal receivers. A refused
 * delivery counts as a plain failure in /metrics, whatever the target (no probe outcome leaks).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isNonPublicAddress } from '../src/modules/webhooks/address-guard.js';
import { client, sleep, startServer, T, type RunningServer } from './harness.js';

let receiver: Server;
let port = 0;
let hits = 0;
let s: RunningServer | null = null;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    hits++;
    req.resume();
    res.end('ok');
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  port = (receiver.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((r) => receiver.close(() => r()));
});
afterEach(async () => {
  await s?.stop();
  s = null;
});

async function finishWithWebhook(webhook: string, command: string): Promise<void> {
  const c = client(s!.url);
  const t = await c.create({ command, payload: {}, webhook });
  expect(t.status).toBe(202);
  expect((await c.claim({ commands: [command] })).status).toBe(200);
  expect((await c.result(t.body.id, { status: 'COMPLETED', result: {} })).status).toBe(200);
}

describe('webhook address guard (issue 12 item 12)', () => {
  it('classifies addresses', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '100.64.0.1']) expect([a, isNonPublicAddress(a)]).toEqual([a, true]);
    for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '93.184.216.34']) expect([a, isNonPublicAddress(a)]).toEqual([a, false]);
  });

  it('refuses loopback receivers by default (IP literal and a name resolving to loopback)', async () => {
    s = await startServer({ resultWebhookMaxAttempts: 2, resultWebhookBaseBackoffSeconds: 0 });
    hits = 0;
    await finishWithWebhook(`http://127.0.0.1:${port}/hook`, 'ssrf1');
    await finishWithWebhook(`http://localhost:${port}/hook`, 'ssrf2');
    await finishWithWebhook(`http://[::ffff:127.0.0.1]:${port}/hook`, 'ssrf3');
    // Subscriptions: the queue-ready notification is refused the same way.
    const sub = await client(s.url).call('POST', '/v1/codeq/workers/subscriptions', { token: T.worker, body: { callbackUrl: `http://127.0.0.1:${port}/ready`, eventTypes: ['ssrf4'], ttlSeconds: 60 } });
    expect(sub.status).toBeLessThan(300);
    await client(s.url).create({ command: 'ssrf4', payload: {} });
    await sleep(1500);
    expect(hits).toBe(0);
    const metrics = (await client(s.url).call('GET', '/metrics')).text;
    expect(metrics).toContain('codeq_webhook_deliveries_total{kind="task_result",command="ssrf1",outcome="failure"} 1');
    expect(metrics).toContain('codeq_webhook_deliveries_total{kind="task_result",command="ssrf2",outcome="failure"} 1');
    // Refused deliveries are not retried: their outbox rows are deleted and counted by reason.
    expect(metrics).toContain('codeq_webhook_deliveries_dropped_total{reason="refused"} 3');
  }, 30_000);

  it('delivers to internal receivers when CODEQ_WEBHOOK_ALLOW_PRIVATE is set', async () => {
    s = await startServer({ webhookAllowPrivate: true });
    hits = 0;
    await finishWithWebhook(`http://localhost:${port}/hook`, 'ssrf5');
    const until = Date.now() + 5000;
    while (hits < 1 && Date.now() < until) await sleep(20);
    expect(hits).toBe(1);
  });
});
