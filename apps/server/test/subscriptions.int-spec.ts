/** Worker subscriptions and queue-ready notifications to a real local receiver. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { client, sleep, startServer, T, type RunningServer } from './harness.js';

let receiver: Server;
let base: string;
let hits: { path: string; body: any }[] = [];
let s: RunningServer;
let c: ReturnType<typeof client>;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      hits.push({ path: req.url ?? '', body: JSON.parse(body) });
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise<void>((r) => receiver.close(() => r()));
});
beforeEach(async () => {
  hits = [];
  s = await startServer({ webhookAllowPrivate: true }); // the receiver is on loopback
  c = client(s.url);
});
afterEach(async () => {
  await s.stop();
});

const subscribe = (body: unknown, token: string = T.worker) => c.call('POST', '/v1/codeq/workers/subscriptions', { token, body });
async function until(cond: () => boolean, ms = 3000) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(20);
}

describe('worker subscriptions', () => {
  it('notifies fanout subscribers of the same tenant when a task becomes ready', async () => {
    const a = await subscribe({ callbackUrl: `${base}/a`, eventTypes: ['render'] });
    expect(a.status).toBe(200);
    expect(a.body).toEqual({ expiresAt: expect.any(String), subscriptionId: expect.any(String) });
    await subscribe({ callbackUrl: `${base}/b`, eventTypes: ['render'] });
    await subscribe({ callbackUrl: `${base}/other-tenant`, eventTypes: ['render'] }, T.globexWorker);
    await c.create({ command: 'render', payload: 1 });
    await c.create({ command: 'render', payload: 2, delaySeconds: 60 }); // scheduled: no notification
    await until(() => hits.length >= 2);
    await sleep(100);
    expect(hits.map((h) => h.path).sort()).toEqual(['/a', '/b']);
    expect(hits[0]!.body).toMatchObject({ eventType: 'render', available: true, queueDepth: 0, claimUrl: '/v1/codeq/tasks/claim', notificationId: expect.stringMatching(/^ntf-/) });
  });

  it('rotates group members and throttles each subscription', async () => {
    await subscribe({ callbackUrl: `${base}/g1`, eventTypes: ['g'], deliveryMode: 'group', groupId: 'pool' });
    await subscribe({ callbackUrl: `${base}/g2`, eventTypes: ['g'], deliveryMode: 'group', groupId: 'pool' });
    await subscribe({ callbackUrl: `${base}/slow`, eventTypes: ['g'], minIntervalSeconds: 60 });
    for (let i = 0; i < 4; i++) await c.create({ command: 'g', payload: i });
    await until(() => hits.length >= 5);
    await sleep(100);
    const paths = hits.map((h) => h.path);
    expect(paths.filter((p) => p === '/g1')).toHaveLength(2);
    expect(paths.filter((p) => p === '/g2')).toHaveLength(2);
    expect(paths.filter((p) => p === '/slow')).toHaveLength(1);
  });

  it('codeq_subscriptions_active counts unexpired subscriptions per event type, all tenants', async () => {
    const gauge = async (command: string): Promise<number | undefined> => {
      const { text } = await c.call('GET', '/metrics', {});
      const m = new RegExp(`^codeq_subscriptions_active\\{command="${command.replace('*', '\\*')}"\\} (\\d+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    expect(await gauge('report')).toBeUndefined();
    await subscribe({ callbackUrl: `${base}/a`, eventTypes: ['report', 'render'] });
    await subscribe({ callbackUrl: `${base}/b`, eventTypes: ['report'] }, T.globexWorker);
    const short = await subscribe({ callbackUrl: `${base}/c`, eventTypes: ['report'], ttlSeconds: 1 });
    expect(short.status).toBe(200);
    expect(await gauge('report')).toBe(3);
    expect(await gauge('render')).toBe(1);
    await sleep(1200); // the 1 s subscription expires
    expect(await gauge('report')).toBe(2);
  });

  it('validates input, scopes and event types, and renews by heartbeat', async () => {
    expect((await subscribe({ eventTypes: ['x'] })).body.error).toBe('invalid body');
    expect((await subscribe({ callbackUrl: 'ftp://x' })).body.error).toBe('invalid callback url');
    expect((await subscribe({ callbackUrl: `${base}/x`, deliveryMode: 'weird' })).body.error).toBe('invalid deliveryMode');
    expect((await subscribe({ callbackUrl: `${base}/x`, deliveryMode: 'group' })).body.error).toBe('groupId is required');
    expect((await subscribe({ callbackUrl: `${base}/x`, eventTypes: ['OTHER'] }, T.limited)).status).toBe(403);
    const sub = await subscribe({ callbackUrl: `${base}/x`, eventTypes: ['x'], ttlSeconds: 5 });
    const hb = await c.call('POST', `/v1/codeq/workers/subscriptions/${sub.body.subscriptionId}/heartbeat`, { token: T.worker, body: { ttlSeconds: 120 } });
    expect(hb.status).toBe(200);
    expect(Date.parse(hb.body.expiresAt) - Date.now()).toBeGreaterThan(100_000);
    expect((await c.call('POST', `/v1/codeq/workers/subscriptions/${sub.body.subscriptionId}/heartbeat`, { token: T.globexWorker, body: {} })).status).toBe(404);
    expect((await c.call('POST', '/v1/codeq/workers/subscriptions/nope/heartbeat', { token: T.worker, body: {} })).body.error).toBe('not-found');
  });
});
