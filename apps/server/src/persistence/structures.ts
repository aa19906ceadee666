/** Small allocation-light data structures for the memory indexes (typed arrays, no object per entry). */

/** Room a deque or heap starts with; larger ones that empty out give their memory back. */
const MIN_CAPACITY = 8;
const KEEP_CAPACITY = 1024;

/**
 * FIFO of (slot, version) pairs in a ring buffer over typed arrays (the ready FIFOs of the memory
 * index: 12 bytes per entry, no object). Capacity is a power of two, doubled when full.
 */
export class SlotDeque {
  private slots = new Int32Array(0);
  private versions = new Float64Array(0);
  private head = 0;
  private len = 0;
  get length(): number {
    return this.len;
  }
  get capacity(): number {
    return this.slots.length;
  }
  push(slot: number, version: number): void {
    if (this.len === this.slots.length) this.grow();
    const i = (this.head + this.len) & (this.slots.length - 1);
    this.slots[i] = slot;
    this.versions[i] = version;
    this.len++;
  }
  /** Slot at the head, or -1 when empty. */
  peekSlot(): number {
    return this.len ? this.slots[this.head]! : -1;
  }
  /** Version at the head (meaningless when empty). */
  peekVersion(): number {
    return this.versions[this.head]!;
  }
  /** Drop the head entry and return its slot (-1 when empty). */
  shift(): number {
    if (!this.len) return -1;
    const slot = this.slots[this.head]!;
    this.head = (this.head + 1) & (this.slots.length - 1);
    if (--this.len === 0 && this.slots.length > KEEP_CAPACITY) this.clear();
    return slot;
  }
  clear(): void {
    this.slots = new Int32Array(0);
    this.versions = new Float64Array(0);
    this.head = 0;
    this.len = 0;
  }
  private grow(): void {
    const cap = Math.max(MIN_CAPACITY, this.slots.length * 2);
    const slots = new Int32Array(cap);
    const versions = new Float64Array(cap);
    const mask = this.slots.length - 1;
    for (let k = 0; k < this.len; k++) {
      const i = (this.head + k) & mask;
      slots[k] = this.slots[i]!;
      versions[k] = this.versions[i]!;
    }
    this.slots = slots;
    this.versions = versions;
    this.head = 0;
  }
}

/**
 * Binary min-heap of (at, seq, slot, version) entries in typed arrays, ordered by `at` then `seq`
 * (the delayed and lease heaps of the memory index: 28 bytes per entry, no object).
 */
export class SlotHeap {
  private ats = new Float64Array(0);
  private seqs = new Float64Array(0);
  private slots = new Int32Array(0);
  private versions = new Float64Array(0);
  private n = 0;
  get size(): number {
    return this.n;
  }
  clear(): void {
    this.ats = new Float64Array(0);
    this.seqs = new Float64Array(0);
    this.slots = new Int32Array(0);
    this.versions = new Float64Array(0);
    this.n = 0;
  }
  /** `at` of the top entry, or undefined when empty. */
  peekAt(): number | undefined {
    return this.n ? this.ats[0] : undefined;
  }
  peekSlot(): number {
    return this.n ? this.slots[0]! : -1;
  }
  peekVersion(): number {
    return this.versions[0]!;
  }
  push(at: number, seq: number, slot: number, version: number): void {
    if (this.n === this.ats.length) this.resize(Math.max(MIN_CAPACITY, this.n * 2));
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!(at < this.ats[p]! || (at === this.ats[p] && seq < this.seqs[p]!))) break;
      this.move(p, i);
      i = p;
    }
    this.put(i, at, seq, slot, version);
  }
  /** Remove the top entry. */
  pop(): void {
    if (!this.n) return;
    const last = --this.n;
    if (last > 0) {
      const at = this.ats[last]!;
      const seq = this.seqs[last]!;
      const slot = this.slots[last]!;
      const version = this.versions[last]!;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= last) break;
        const r = l + 1;
        const c = r < last && this.less(r, l) ? r : l;
        if (!(this.ats[c]! < at || (this.ats[c] === at && this.seqs[c]! < seq))) break;
        this.move(c, i);
        i = c;
      }
      this.put(i, at, seq, slot, version);
    }
    if (this.ats.length > KEEP_CAPACITY && this.n * 4 < this.ats.length) this.resize(this.ats.length / 2);
  }
  private less(a: number, b: number): boolean {
    return this.ats[a]! < this.ats[b]! || (this.ats[a] === this.ats[b] && this.seqs[a]! < this.seqs[b]!);
  }
  private move(from: number, to: number): void {
    this.put(to, this.ats[from]!, this.seqs[from]!, this.slots[from]!, this.versions[from]!);
  }
  private put(i: number, at: number, seq: number, slot: number, version: number): void {
    this.ats[i] = at;
    this.seqs[i] = seq;
    this.slots[i] = slot;
    this.versions[i] = version;
  }
  private resize(cap: number): void {
    const ats = new Float64Array(cap);
    const seqs = new Float64Array(cap);
    const slots = new Int32Array(cap);
    const versions = new Float64Array(cap);
    ats.set(this.ats.subarray(0, this.n));
    seqs.set(this.seqs.subarray(0, this.n));
    slots.set(this.slots.subarray(0, this.n));
    versions.set(this.versions.subarray(0, this.n));
    this.ats = ats;
    this.seqs = seqs;
    this.slots = slots;
    this.versions = versions;
  }
}

/** A one-shot timer that can be re-armed for an earlier instant. */
export class Alarm {
  private timer: NodeJS.Timeout | null = null;
  private at = Infinity;
  constructor(
    private readonly fire: () => void,
    /** The engine's clock (the delay until `at` is measured on it). */
    private readonly now: () => number = Date.now,
  ) {}
  /** Make sure the alarm fires no later than `at` (epoch ms). */
  armAt(at: number): void {
    if (this.timer && at >= this.at) return;
    this.clear();
    this.at = at;
    const delay = Math.max(0, Math.min(at - this.now(), 2 ** 31 - 1));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.at = Infinity;
      this.fire();
    }, delay);
  }
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.at = Infinity;
  }
}
