/**
 * The compact memory index of the embedded engine (issue 12 item 6) rebuilt from disk behaves like
 * the one built by the writes themselves: two stores get the same tasks, one is reopened (its index
 * is loaded from SQLite), then both must claim in the same order, count the same and expire the
 * same leases. Ids that are not canonical UUIDs (migrated data) are part of the mix.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newTaskId } from '../src/domain/ids.js';
import type { ExpiredLease } from '../src/domain/task-store.js';
import { SqliteTaskStore } from '../src/persistence/sqlite/sqlite-task-store.js';
import { newTask } from './task-store.contract.js';

const COMMANDS = ['cmd-a', 'cmd-b', 'cmd-c'];
const live = (s: SqliteTaskStore) => (s as unknown as { memoryStats(): { live: number } }).memoryStats().live;

async function openStore(dir: string): Promise<SqliteTaskStore> {
  const s = new SqliteTaskStore({ path: dir, fsyncOnCommit: false });
  await s.open();
  return s;
}

/** Every ready task of `acme`, claimed 7 at a time across the commands. */
async function claimAll(s: SqliteTaskStore): Promise<string[][]> {
  const batches: string[][] = [];
  for (;;) {
    const got = await s.claim('acme', COMMANDS, 7, { workerId: 'w', leaseSeconds: 600, now: Date.now(), leaseId: randomUUID() });
    if (!got.length) return batches;
    batches.push(got.map((t) => t.id));
  }
}

function expiries(s: SqliteTaskStore, n: number): Promise<ExpiredLease[]> {
  const got: ExpiredLease[] = [];
  return new Promise((resolve) => {
    s.onLeaseExpired((ls) => {
      got.push(...ls);
      if (got.length >= n) resolve(got);
    });
  });
}

(process.env['CODEQ_TEST_PG_URL'] ? describe.skip : describe)('SQLite memory index: loaded from disk = built by the writes (SQLite pass only)', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('claims in the same order, counts the same and expires the same leases after a reopen', async () => {
    let seed = 42;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    const later = Date.now() + 3_600_000;
    const records = Array.from({ length: 240 }, (_, i) => {
      const id = i % 10 === 3 ? `legacy-${i}` : i % 10 === 7 ? randomUUID().toUpperCase() : newTaskId();
      const commandKey = COMMANDS[rnd(3)]!;
      const delayed = i % 8 === 5;
      return newTask({
        id, commandKey, command: commandKey.toUpperCase(), priority: rnd(10),
        ...(delayed ? { location: 'DELAYED_ZSET' as const, visibleAtMs: later } : {}),
      });
    });
    const leased = Array.from({ length: 12 }, (_, i) => newTask({ id: i % 4 === 1 ? `legacy-lease-${i}` : newTaskId(), tenantId: 'lease', commandKey: 'job', command: 'JOB' }));

    const stores: SqliteTaskStore[] = [];
    const leases: Map<string, string>[] = [];
    for (let k = 0; k < 2; k++) {
      const dir = await mkdtemp(join(tmpdir(), 'codeq-memidx-'));
      dirs.push(dir);
      const s = await openStore(dir);
      for (const r of [...records, ...leased]) expect((await s.create({ ...r })).created).toBe(true);
      // Half of the lease tenant's tasks are held with a lease that expires in 1 s.
      const held = await s.claim('lease', ['job'], 6, { workerId: 'w', leaseSeconds: 1, now: Date.now(), leaseId: randomUUID() });
      leases.push(new Map(held.map((t) => [t.id, t.leaseId!])));
      stores.push(s);
    }
    // The second store's index is rebuilt from the database.
    await stores[1]!.close();
    stores[1] = await openStore(dirs[1]!);

    const [built, loaded] = stores as [SqliteTaskStore, SqliteTaskStore];
    try {
      expect(live(loaded)).toBe(live(built));
      expect(live(loaded)).toBe(records.length + leased.length);
      for (const key of COMMANDS) expect(await loaded.counts('acme', key)).toEqual(await built.counts('acme', key));
      expect(await loaded.counts('lease', 'job')).toEqual(await built.counts('lease', 'job'));

      const [expiredBuilt, expiredLoaded] = await Promise.all([expiries(built, 6), expiries(loaded, 6)]);
      const asMap = (ls: ExpiredLease[]) => new Map(ls.map((l) => [l.taskId, l.leaseId]));
      expect(asMap(expiredBuilt)).toEqual(leases[0]);
      expect(asMap(expiredLoaded)).toEqual(leases[1]);
      expect(expiredLoaded.every((l) => l.tenantId === 'lease')).toBe(true);

      const order = await claimAll(loaded);
      expect(order).toEqual(await claimAll(built));
      const ids = order.flat();
      const ready = records.filter((r) => r.location === 'PENDING_LIST');
      expect([...ids].sort()).toEqual(ready.map((r) => r.id).sort());
      // Priority first, FIFO (creation order) within a command and priority.
      const pos = new Map(ids.map((id, i) => [id, i]));
      for (const a of ready) {
        for (const b of ready) {
          if (a.priority > b.priority) expect(pos.get(a.id)!).toBeLessThan(pos.get(b.id)!);
        }
      }
      for (const key of COMMANDS) {
        for (let p = 0; p < 10; p++) {
          const fifo = ready.filter((r) => r.commandKey === key && r.priority === p).map((r) => r.id);
          expect(ids.filter((id) => fifo.includes(id))).toEqual(fifo);
        }
      }
      expect((await loaded.counts('acme', 'cmd-a')).delayed).toBe(records.filter((r) => r.commandKey === 'cmd-a' && r.location === 'DELAYED_ZSET').length);
    } finally {
      for (const s of stores) await s.close();
    }
  }, 60_000);
});
