import { randomUUID } from 'node:crypto';
import { newTaskId } from '../../domain/ids.js';
import { formatUuid, hashWords, parseUuid, SlotTable } from './slot-table.js';

const words = new Uint32Array(4);
function hashOf(id: string): number {
  if (!parseUuid(id, words, 0)) throw new Error(`not a canonical uuid: ${id}`);
  return hashWords(words[0]!, words[1]!, words[2]!, words[3]!);
}

/** `n` random canonical ids whose hashes share their low 10 bits (`low`): one probe run in any table of ≤ 1024 cells. */
function colliding(n: number, low: number): string[] {
  const ids: string[] = [];
  while (ids.length < n) {
    const id = randomUUID();
    if ((hashOf(id) & 1023) === low) ids.push(id);
  }
  return ids;
}

describe('uuid words (parseUuid, formatUuid)', () => {
  it('round-trips canonical ids, including the ones newTaskId makes', () => {
    for (const id of [newTaskId(), newTaskId(0), randomUUID(), '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff']) {
      expect(parseUuid(id, words, 0)).toBe(true);
      expect(formatUuid(words[0]!, words[1]!, words[2]!, words[3]!)).toBe(id);
    }
    expect(parseUuid('0193b0f2-6c1e-4a3b-9d2e-5f0a1b2c3d4e', words, 0)).toBe(true);
    expect([...words]).toEqual([0x0193b0f2, 0x6c1e4a3b, 0x9d2e5f0a, 0x1b2c3d4e]);
  });

  it('rejects every other text', () => {
    const id = randomUUID();
    for (const odd of ['', 'task-1', id.toUpperCase(), `{${id}}`, id.replace(/-/g, ''), id.slice(0, 35) + 'g', id.slice(0, 35) + 'ä', id.replace('-', '_'), id + ' ']) {
      expect(parseUuid(odd, words, 0)).toBe(false);
    }
  });
});

describe('SlotTable (live task ids of the memory index)', () => {
  it('hands out one slot per id, finds it again and gives the id back', () => {
    const t = new SlotTable();
    const ids = Array.from({ length: 100 }, () => newTaskId());
    const slots = ids.map((id) => t.acquire(id));
    expect(new Set(slots).size).toBe(100);
    expect(t.size).toBe(100);
    ids.forEach((id, i) => {
      expect(t.find(id)).toBe(slots[i]);
      expect(t.acquire(id)).toBe(slots[i]);
      expect(t.idOf(slots[i]!)).toBe(id);
    });
    expect(t.size).toBe(100);
    expect(t.find(newTaskId())).toBe(-1);
  });

  it('keeps tag and version per slot and clears them when the slot is freed', () => {
    const t = new SlotTable();
    const id = randomUUID();
    const s = t.acquire(id);
    expect(t.tag(s)).toBe(0);
    t.set(s, 3, 42);
    expect([t.tag(s), t.version(s)]).toEqual([3, 42]);
    expect(t.remove(id)).toBe(s);
    expect([t.tag(s), t.version(s)]).toEqual([0, -1]);
    expect(t.remove(id)).toBe(-1);
    expect(t.size).toBe(0);
  });

  it.each([
    ['in the middle of the table', 7],
    ['at its last cell (the probe run wraps around)', 1023],
  ])('deletes ids whose hashes collide %s, keeping the rest of their probe run reachable', (_, low) => {
    const ids = colliding(24, low);
    expect(new Set(ids.map((id) => hashOf(id) & 1023))).toEqual(new Set([low]));
    for (const order of [[0, 5, 23, 12, 1], [23, 22, 21], [3, 4, 5, 6, 7, 8]]) {
      const t = new SlotTable();
      const others = Array.from({ length: 40 }, () => randomUUID());
      const all = [...ids, ...others].sort(() => Math.random() - 0.5);
      for (const id of all) t.acquire(id);
      const gone = new Set(order.map((i) => ids[i]!));
      for (const id of gone) expect(t.remove(id)).toBeGreaterThanOrEqual(0);
      for (const id of all) {
        if (gone.has(id)) expect(t.find(id)).toBe(-1);
        else expect(t.idOf(t.find(id))).toBe(id);
      }
      // The freed slots are reused and the ids come back.
      for (const id of gone) t.acquire(id);
      for (const id of all) expect(t.idOf(t.find(id))).toBe(id);
      expect(t.size).toBe(all.length);
    }
  });

  it('stays consistent with a plain Map across many inserts and deletes (growth, slot reuse)', () => {
    const t = new SlotTable();
    const model = new Map<string, number>();
    const bySlot = new Map<number, string>();
    const pool = Array.from({ length: 3000 }, (_, i) => (i % 50 === 0 ? `odd-${i}` : i % 3 === 0 ? newTaskId(i) : randomUUID()));
    let seed = 12345;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let step = 0; step < 30_000; step++) {
      const id = pool[rnd(pool.length)]!;
      if (rnd(3) > 0) {
        const s = t.acquire(id);
        if (model.has(id)) expect(s).toBe(model.get(id));
        else expect(bySlot.get(s)).toBeUndefined();
        model.set(id, s);
        bySlot.set(s, id);
      } else {
        expect(t.remove(id)).toBe(model.get(id) ?? -1);
        bySlot.delete(model.get(id)!);
        model.delete(id);
      }
      if (step % 5000 === 0) for (const [k, s] of model) expect(t.find(k)).toBe(s);
    }
    expect(t.size).toBe(model.size);
    for (const id of pool) expect(t.find(id)).toBe(model.get(id) ?? -1);
    for (const [id, s] of model) expect(t.idOf(s)).toBe(id);
    // Slots are reused: the capacity follows the most ids held at once, not the operations.
    expect(t.capacity).toBeLessThanOrEqual(4096);
    for (const id of [...model.keys()]) t.remove(id);
    expect(t.size).toBe(0);
    for (const id of pool) expect(t.find(id)).toBe(-1);
  });

  it('keeps ids that are not canonical UUIDs apart, exactly as given', () => {
    const t = new SlotTable();
    const id = randomUUID();
    const odd = ['task-1', id.toUpperCase(), `{${id}}`, '', 'ü-☃'];
    const s = t.acquire(id);
    const oddSlots = odd.map((o) => t.acquire(o));
    expect(new Set([s, ...oddSlots]).size).toBe(odd.length + 1);
    odd.forEach((o, i) => {
      expect(t.find(o)).toBe(oddSlots[i]);
      expect(t.idOf(oddSlots[i]!)).toBe(o);
    });
    expect(t.idOf(s)).toBe(id);
    expect(t.remove(id.toUpperCase())).toBe(oddSlots[1]);
    expect(t.find(id)).toBe(s);
    expect(t.find(id.toUpperCase())).toBe(-1);
    // A freed odd slot may hold a canonical id next.
    const next = randomUUID();
    expect(t.acquire(next)).toBe(oddSlots[1]);
    expect(t.idOf(oddSlots[1]!)).toBe(next);
    expect(t.size).toBe(odd.length + 1);
  });

  it('reset forgets every id and sizes the table for a load', () => {
    const t = new SlotTable();
    const ids = Array.from({ length: 50 }, () => randomUUID());
    for (const id of ids) t.acquire(id);
    t.reset(10_000);
    expect(t.size).toBe(0);
    expect(t.capacity).toBe(10_000);
    for (const id of ids) expect(t.find(id)).toBe(-1);
    for (let i = 0; i < 10_000; i++) t.acquire(randomUUID());
    expect(t.capacity).toBe(10_000);
  });
});
