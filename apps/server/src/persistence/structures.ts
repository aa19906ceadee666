/** Small allocation-light data structures for the memory indexes. */

/** FIFO queue with amortised O(1) push/shift. */
export class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(v: T): void {
    this.items.push(v);
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const v = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
}

export interface HeapEntry {
  at: number;
  id: string;
  seq: number;
  /** The record this entry was made for; the entry is stale once the record was replaced. */
  ref?: unknown;
}

/** Binary min-heap on `at` (ties: lower seq first). */
export class MinHeap {
  private a: HeapEntry[] = [];
  get size(): number {
    return this.a.length;
  }
  clear(): void {
    this.a = [];
  }
  peek(): HeapEntry | undefined {
    return this.a[0];
  }
  push(e: HeapEntry): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): HeapEntry | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l]!, a[m]!)) m = l;
        if (r < a.length && less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function less(x: HeapEntry, y: HeapEntry): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
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
