import { SlotDeque, SlotHeap } from './structures.js';

describe('SlotDeque (ready FIFOs of the memory index)', () => {
  it('wraps around its ring buffer and keeps FIFO order when it grows while wrapped', () => {
    const d = new SlotDeque();
    for (let i = 0; i < 6; i++) d.push(i, i * 10);
    expect(d.capacity).toBe(8);
    for (let i = 0; i < 4; i++) expect(d.shift()).toBe(i);
    // Head at 4: these pushes wrap to the front of the buffer, then force a growth.
    for (let i = 6; i < 20; i++) d.push(i, i * 10);
    expect(d.capacity).toBe(16);
    expect(d.length).toBe(16);
    for (let i = 4; i < 20; i++) {
      expect(d.peekSlot()).toBe(i);
      expect(d.peekVersion()).toBe(i * 10);
      expect(d.shift()).toBe(i);
    }
    expect(d.length).toBe(0);
    expect(d.peekSlot()).toBe(-1);
    expect(d.shift()).toBe(-1);
  });

  it('matches an array model over random pushes and shifts, and gives memory back once empty', () => {
    const d = new SlotDeque();
    const model: [number, number][] = [];
    let seed = 7;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let step = 0; step < 50_000; step++) {
      if (rnd(5) < 3) {
        const e: [number, number] = [rnd(1 << 30), rnd(1 << 30) + 0.5];
        d.push(e[0], e[1]);
        model.push(e);
      } else {
        const e = model.shift();
        const version = d.peekVersion();
        const slot = d.shift();
        if (slot !== (e ? e[0] : -1) || (e && version !== e[1])) throw new Error(`got (${slot}, ${version}) at step ${step}, expected ${String(e)}`);
      }
      if (d.length !== model.length) throw new Error(`length ${d.length} after step ${step}, expected ${model.length}`);
    }
    expect(d.capacity).toBeGreaterThan(1024);
    while (model.length) expect(d.shift()).toBe(model.shift()![0]);
    expect(d.capacity).toBe(0);
  });
});

describe('SlotHeap (delayed and lease heaps of the memory index)', () => {
  it('pops by `at`, then `seq`, carrying slot and version', () => {
    const h = new SlotHeap();
    const model: { at: number; seq: number; slot: number; version: number }[] = [];
    let seed = 99;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let i = 0; i < 5000; i++) {
      const e = { at: rnd(300) * 1000, seq: i, slot: rnd(1 << 20), version: i * 2 + 0.5 };
      h.push(e.at, e.seq, e.slot, e.version);
      model.push(e);
    }
    model.sort((a, b) => a.at - b.at || a.seq - b.seq);
    expect(h.size).toBe(5000);
    for (const e of model) {
      expect([h.peekAt(), h.peekSlot(), h.peekVersion()]).toEqual([e.at, e.slot, e.version]);
      h.pop();
    }
    expect(h.size).toBe(0);
    expect(h.peekAt()).toBeUndefined();
    expect(h.peekSlot()).toBe(-1);
  });

  it('interleaves pushes and pops like a sorted list', () => {
    const h = new SlotHeap();
    let model: [number, number][] = [];
    let seed = 3;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let i = 0; i < 20_000; i++) {
      if (rnd(3) < 2) {
        const at = rnd(50);
        h.push(at, i, i, i);
        model.push([at, i]);
        model = model.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      } else if (model.length) {
        expect(h.peekSlot()).toBe(model[0]![1]);
        h.pop();
        model.shift();
      }
    }
    expect(h.size).toBe(model.length);
  });
});
