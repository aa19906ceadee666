/**
 * Issue 12 item 9: a tenant holds at most 1000 live subscriptions (429 above, other tenants
 * unaffected); expired ones free their slot.
 */
import { client, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer | null = null;
afterEach(async () => {
  await s?.stop();
  s = null;
});

describe('subscription bounds (issue 12 item 9)', () => {
  it('caps live subscriptions per tenant', async () => {
    s = await startServer();
    const c = client(s.url);
    const sub = (token: string, ttlSeconds = 60) =>
      c.call('POST', '/v1/codeq/workers/subscriptions', { token, body: { callbackUrl: 'https://hooks.example.com/ready', eventTypes: ['cap'], ttlSeconds } });
    for (let i = 0; i < 1000; i += 50) {
      const rs = await Promise.all(Array.from({ length: 50 }, () => sub(T.worker)));
      expect(rs.every((r) => r.status < 300)).toBe(true);
    }
    const over = await sub(T.worker);
    expect(over.status).toBe(429);
    expect(over.body.code).toBe('RATE_LIMITED');
    expect((await sub(T.globexWorker)).status).toBeLessThan(300); // another tenant
  }, 60_000);
});
