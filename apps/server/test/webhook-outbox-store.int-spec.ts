/**
 * The outbox port on each engine (ADR 0012), driven directly: the delivery row is written by the
 * same commit as the finishing transition (and not when the transition is refused), survives a
 * reopen, is hidden while claimed, becomes due again after retryAt/release, and trim keeps the
 * newest rows under the cap. SQLite in the SQLite pass, PostgreSQL when CODEQ_TEST_PG_URL is set.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { complete, leaseTask } from '../src/domain/rules.js';
import type { TaskStore } from '../src/domain/task-store.js';
import type { TaskRecord } from '../src/domain/task.js';
import { hasWebhookOutbox, resultWebhook, type WebhookOutbox } from '../src/domain/webhook-outbox.js';
import { PostgresTaskStore } from '../src/persistence/postgres/postgres-task-store.js';
import { SqliteTaskStore } from '../src/persistence/sqlite/sqlite-task-store.js';
import { PG_URL, dropDatabase, ensureDatabase } from './pg.js';
import { newTask } from './task-store.contract.js';

let n = 0;
let where = '';

async function openStore(reuse?: string): Promise<TaskStore> {
  if (PG_URL) {
    where ||= `codeq_outbox_store_${process.pid}_${n++}`;
    const s = new PostgresTaskStore({ url: await ensureDatabase(reuse ?? where), poolSize: 4 });
    await s.open();
    return s;
  }
  where ||= await mkdtemp(join(tmpdir(), 'codeq-outbox-store-'));
  const s = new SqliteTaskStore({ path: reuse ?? where, fsyncOnCommit: false });
  await s.open();
  return s;
}

function outboxOf(store: TaskStore): WebhookOutbox {
  if (!hasWebhookOutbox(store)) throw new Error('engine without an outbox');
  return store.webhookOutbox();
}

/** Create, claim and complete a task with `webhook`; returns the delivery id written (or none). */
async function finishWith(store: TaskStore, webhook: string | null, refuse = false): Promise<{ task: TaskRecord; deliveryId: string | null }> {
  const t = newTask({ webhook, command: 'HOOK', commandKey: 'hook' });
  await store.create(t);
  const [claimed] = await store.claim('acme', ['hook'], 1, (x) => leaseTask(x, 'w1', randomUUID(), 60, Date.now()));
  let deliveryId: string | null = null;
  await store
    .transition('acme', claimed!.id, (cur) => {
      const now = Date.now();
      const { next, result } = complete(cur!, { workerId: 'w1', leaseId: cur!.leaseId! }, { status: 'COMPLETED', result: '{"ok":true}', error: null, artifacts: [] }, now);
      const row = resultWebhook(next, result, now);
      if (refuse) throw new Error('refused');
      deliveryId = row?.id ?? null;
      return { next, result, ...(row ? { webhook: row } : {}), value: null };
    })
    .catch((e: Error) => {
      if (!refuse) throw e;
    });
  return { task: t, deliveryId };
}

describe(`webhook outbox store (${PG_URL ? 'PostgreSQL' : 'SQLite'})`, () => {
  let store: TaskStore;
  beforeEach(async () => {
    where = '';
    store = await openStore();
  });
  afterEach(async () => {
    await store.close();
    if (PG_URL) await dropDatabase(where);
    else await rm(where, { recursive: true, force: true });
  });

  it('writes the delivery with the finishing commit, only for tasks with a webhook, and keeps it across a reopen', async () => {
    const { task, deliveryId } = await finishWith(store, 'https://example.com/hook');
    await finishWith(store, null); // no webhook: no row
    await finishWith(store, 'https://example.com/refused', true); // refused transition: no row
    expect(await outboxOf(store).count()).toBe(1);
    await store.close();
    store = await openStore(where);
    const out = outboxOf(store);
    const rows = await out.claim(Date.now(), Date.now() + 60_000, 10);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: deliveryId, taskId: task.id, tenantId: 'acme', url: 'https://example.com/hook', attempts: 1, command: 'HOOK' });
    expect(JSON.parse(rows[0]!.body)).toMatchObject({ taskId: task.id, eventType: 'HOOK', status: 'COMPLETED', result: { ok: true }, error: '', artifacts: null });
  });

  it('hides a claimed row until its lease ends or it is retried or released, and deletes on remove', async () => {
    const { deliveryId } = await finishWith(store, 'https://example.com/hook');
    const out = outboxOf(store);
    const now = Date.now();
    expect(await out.claim(now, now + 60_000, 10)).toHaveLength(1);
    expect(await out.claim(now, now + 60_000, 10)).toHaveLength(0); // claimed: hidden
    expect((await out.claim(now + 61_000, now + 120_000, 10)).map((r) => r.attempts)).toEqual([2]); // lease over: claimable again
    await out.retryAt(deliveryId!, now + 5000);
    expect(await out.claim(now + 4000, now + 60_000, 10)).toHaveLength(0);
    const again = await out.claim(now + 5000, now + 60_000, 10);
    expect(again.map((r) => r.attempts)).toEqual([3]);
    await out.release([deliveryId!], now); // given back: the attempt does not count
    expect((await out.claim(now, now + 60_000, 10)).map((r) => r.attempts)).toEqual([3]);
    await out.remove([deliveryId!]);
    expect(await out.count()).toBe(0);
  });

  it('trims the oldest unclaimed rows beyond the cap', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await finishWith(store, 'https://example.com/hook')).deliveryId!);
      await new Promise((r) => setTimeout(r, 5));
    }
    const out = outboxOf(store);
    expect(await out.trim(10, Date.now())).toEqual([]);
    const dropped = await out.trim(2, Date.now());
    expect(dropped.map((d) => d.id).sort()).toEqual(ids.slice(0, 3).sort());
    expect(dropped.every((d) => d.command === 'HOOK')).toBe(true);
    expect(await out.count()).toBe(2);
    const left = await out.claim(Date.now(), Date.now() + 60_000, 10);
    expect(left.map((r) => r.id).sort()).toEqual(ids.slice(3).sort());
  });
});
