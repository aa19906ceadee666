/**
 * Issue 12 item 9, outbound result webhooks: at most MAX_WEBHOOKS_IN_FLIGHT requests are open at
 * once (counted at a slow local receiver); deliveries beyond the free slots wait in the durable
 * outbox (ADR 0012), and deliveries still pending at shutdown are delivered after a restart.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_WEBHOOKS_IN_FLIGHT, WebhooksService } from '../src/modules/webhooks/webhooks.service.js';
import { client, sleep, startServer, type RunningServer } from './harness.js';

let receiver: Server;
let url: string;
/** Requests open at the receiver now, the most seen at once, and bodies received. */
let open = 0;
let maxOpen = 0;
let bodies: string[] = [];
/** Answers held by the receiver until released. */
let held: ServerResponse[] = [];
let holdMs = 0;
let s: RunningServer | null = null;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      bodies.push(body);
      const answer = () => {
        if (!res.writableEnded) res.end('ok');
      };
      if (holdMs > 0) setTimeout(answer, holdMs);
      else held.push(Object.assign(res, { answer }));
    });
    // Answered, or the connection went away (a timed-out or aborted attempt).
    res.once('close', () => open--);
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise<void>((r) => receiver.close(() => r()));
});
beforeEach(() => {
  open = 0;
  maxOpen = 0;
  bodies = [];
  held = [];
  holdMs = 0;
});
afterEach(async () => {
  for (const r of held) (r as ServerResponse & { answer(): void }).answer();
  await s?.stop();
  s = null;
});

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(25);
}

/** Rows left in the outbox once they settle to `n` (deletes follow the receiver's answers), or the last count. */
async function rowsSettle(svc: WebhooksService, n: number, ms = 10_000): Promise<number> {
  const end = Date.now() + ms;
  let rows = await svc.refreshCount();
  while (rows !== n && Date.now() < end) {
    await sleep(50);
    rows = await svc.refreshCount();
  }
  return rows;
}

/** Create `n` tasks with the receiver as webhook and complete them all (each fires one callback). */
async function finishWithWebhooks(srv: RunningServer, command: string, n: number): Promise<string[]> {
  const c = client(srv.url);
  const ids: string[] = [];
  for (let i = 0; i < n; i += 25) {
    const rs = await Promise.all(Array.from({ length: Math.min(25, n - i) }, () => c.create({ command, payload: { i }, webhook: url })));
    ids.push(...rs.map((r) => r.body.id as string));
  }
  for (let done = 0; done < n; ) {
    const claimed = await Promise.all(Array.from({ length: 25 }, () => c.claim({ commands: [command] })));
    const got = claimed.filter((r) => r.status === 200).map((r) => r.body.id as string);
    if (!got.length) break;
    const results = await Promise.all(got.map((id) => c.result(id, { status: 'COMPLETED', result: { id } })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    done += got.length;
  }
  return ids;
}

const metric = async (srv: RunningServer, line: string) => (await client(srv.url).call('GET', '/metrics')).text.split('\n').find((l) => l.startsWith(line));

describe('result webhook bounds (issue 12 item 9)', () => {
  it(`keeps at most ${MAX_WEBHOOKS_IN_FLIGHT} requests open at a slow receiver and still delivers every callback once`, async () => {
    s = await startServer({ webhookAllowPrivate: true, webhookTimeoutMs: 30_000 });
    holdMs = 1000;
    const n = MAX_WEBHOOKS_IN_FLIGHT + 36;
    const ids = await finishWithWebhooks(s, 'slow-hook', n);
    await until(() => bodies.length >= n && open === 0, 60_000);
    expect(maxOpen).toBeLessThanOrEqual(MAX_WEBHOOKS_IN_FLIGHT);
    expect(maxOpen).toBeGreaterThan(1); // deliveries do run in parallel
    expect(bodies.map((b) => JSON.parse(b).taskId).sort()).toEqual([...ids].sort());
    expect(await rowsSettle(s.app.app.get(WebhooksService), 0)).toBe(0);
    expect(s.app.app.get(WebhooksService).load.active).toBe(0);
  }, 120_000);

  it('keeps deliveries beyond the free request slots in the outbox and delivers them as slots free', async () => {
    s = await startServer({ webhookAllowPrivate: true, webhookTimeoutMs: 30_000, webhookOutboxPollMs: 100 });
    const svc = s.app.app.get(WebhooksService);
    svc.maxInFlight = 2;
    const ids = await finishWithWebhooks(s, 'full-hook', 8);
    // Two requests open at the receiver; the six others wait in the outbox (nothing is dropped).
    await until(() => bodies.length === 2, 10_000);
    await sleep(300);
    expect(bodies).toHaveLength(2);
    expect(svc.load.active).toBe(2);
    expect(await svc.refreshCount()).toBe(8);
    expect(await metric(s, 'codeq_webhook_deliveries_dropped_total{reason="outbox_full"}')).toBe('codeq_webhook_deliveries_dropped_total{reason="outbox_full"} 0');
    // Released, every delivery arrives once and the outbox is empty.
    holdMs = 1;
    for (const r of held.splice(0)) (r as ServerResponse & { answer(): void }).answer();
    await until(() => bodies.length === 8 && open === 0, 10_000);
    await sleep(300);
    expect(bodies.map((b) => JSON.parse(b).taskId).sort()).toEqual([...ids].sort());
    expect(await rowsSettle(svc, 0)).toBe(0);
  }, 60_000);

  it('keeps the deliveries pending at shutdown and delivers them after a restart on the same data', async () => {
    s = await startServer({ webhookAllowPrivate: true, webhookTimeoutMs: 30_000 });
    const svc = s.app.app.get(WebhooksService);
    svc.maxInFlight = 1;
    const ids = await finishWithWebhooks(s, 'stop-hook', 3);
    await until(() => bodies.length === 1, 10_000);
    const dir = s.dir;
    await s.stop({ keepDir: true }); // the attempt in flight is aborted and its row given back
    s = null;
    for (const r of held.splice(0)) r.destroy();
    bodies = [];
    holdMs = 1;
    s = await startServer({ webhookAllowPrivate: true, webhookTimeoutMs: 30_000 }, { dir });
    await until(() => bodies.length === 3, 20_000);
    await sleep(300);
    expect(bodies.map((b) => JSON.parse(b).taskId).sort()).toEqual([...ids].sort());
    expect(await metric(s, 'codeq_webhook_deliveries_dropped_total{reason="max_attempts"}')).toBe('codeq_webhook_deliveries_dropped_total{reason="max_attempts"} 0');
  }, 60_000);
});
