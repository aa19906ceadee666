/**
 * The live tasks of the memory index in a compact form (issue 12 item 6): a slot per task in typed
 * arrays (struct of arrays, grown by doubling, freed slots reused through a free list) and an
 * id → slot hash table. No object and no id string per task: an id in canonical UUID form
 * (lowercase, what domain/ids.ts makes) is held as 4 × 32 bits and looked up in an open-addressing
 * table over an Int32Array (linear probing, backward-shift deletion, load ≤ 0.7). Any other id
 * (migrated data, odd test ids) goes to a fallback Map, so every id behaves the same.
 *
 * Per slot: a tag (0 = free; the index stores its location code there) and a version (the index
 * stores a global counter bumped on every change, so its entries detect staleness by value).
 */

/** Two lowercase hex digits per byte. */
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Value of a lowercase hex digit by char code, -1 for any other character (of the 64 Ki codes). */
const DIGIT = new Int8Array(65536).fill(-1);
for (let i = 0; i < 16; i++) DIGIT[i.toString(16).charCodeAt(0)] = i;

/** The 16 bits of 4 hex digits at `i`; negative when one is not a lowercase hex digit. */
function hex4(id: string, i: number): number {
  return (DIGIT[id.charCodeAt(i)]! << 12) | (DIGIT[id.charCodeAt(i + 1)]! << 8) | (DIGIT[id.charCodeAt(i + 2)]! << 4) | DIGIT[id.charCodeAt(i + 3)]!;
}
/** End of the free list. */
const NONE = 0xffffffff;
const MIN_SLOTS = 16;

/** The hash of an id's 4 words (all of them mixed: the first ones are a timestamp). */
export function hashWords(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ c;
  h = Math.imul(h ^ (h >>> 13), 0x27d4eb2f) ^ d;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

/**
 * Parses a canonical lowercase UUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`) into `out[o..o+3]`.
 * False (and `out` partly written) for any other text.
 */
export function parseUuid(id: string, out: Uint32Array, o: number): boolean {
  if (id.length !== 36 || id.charCodeAt(8) !== 45 || id.charCodeAt(13) !== 45 || id.charCodeAt(18) !== 45 || id.charCodeAt(23) !== 45) return false;
  const a = hex4(id, 0);
  const b = hex4(id, 4);
  const c = hex4(id, 9);
  const d = hex4(id, 14);
  const e = hex4(id, 19);
  const f = hex4(id, 24);
  const g = hex4(id, 28);
  const h = hex4(id, 32);
  if ((a | b | c | d | e | f | g | h) < 0) return false;
  out[o] = a * 65536 + b;
  out[o + 1] = c * 65536 + d;
  out[o + 2] = e * 65536 + f;
  out[o + 3] = g * 65536 + h;
  return true;
}

/** The canonical text of an id held as 4 words. */
export function formatUuid(a: number, b: number, c: number, d: number): string {
  return (
    HEX[a >>> 24]! + HEX[(a >>> 16) & 255]! + HEX[(a >>> 8) & 255]! + HEX[a & 255]! + '-' +
    HEX[b >>> 24]! + HEX[(b >>> 16) & 255]! + '-' + HEX[(b >>> 8) & 255]! + HEX[b & 255]! + '-' +
    HEX[c >>> 24]! + HEX[(c >>> 16) & 255]! + '-' + HEX[(c >>> 8) & 255]! + HEX[c & 255]! +
    HEX[d >>> 24]! + HEX[(d >>> 16) & 255]! + HEX[(d >>> 8) & 255]! + HEX[d & 255]!
  );
}

export class SlotTable {
  /** 4 words of the id per slot; a free slot's first word links the free list. */
  private words = new Uint32Array(0);
  private tags = new Uint8Array(0);
  private versions = new Float64Array(0);
  /** Slots handed out at least once (the rest of the arrays is untouched). */
  private used = 0;
  private freeHead = NONE;
  private live = 0;
  /** Open-addressing table: slot + 1 per cell, 0 = empty. */
  private cells = new Int32Array(0);
  private mask = -1;
  /** Slots in `cells`. */
  private hashed = 0;
  /** Ids that are not canonical UUIDs, and the way back. */
  private readonly oddSlots = new Map<string, number>();
  private readonly oddIds = new Map<number, string>();
  private readonly scratch = new Uint32Array(4);

  constructor(capacity = 0) {
    this.reset(capacity);
  }

  /** Live slots. */
  get size(): number {
    return this.live;
  }

  /** Slot capacity (for tests and stats). */
  get capacity(): number {
    return this.tags.length;
  }

  /** Forget every id; room for `capacity` ids without growing. */
  reset(capacity = 0): void {
    const slots = Math.max(MIN_SLOTS, capacity);
    this.words = new Uint32Array(slots * 4);
    this.tags = new Uint8Array(slots);
    this.versions = new Float64Array(slots);
    this.used = 0;
    this.freeHead = NONE;
    this.live = 0;
    let cells = 32;
    while (cells * 0.7 < slots) cells *= 2;
    this.cells = new Int32Array(cells);
    this.mask = cells - 1;
    this.hashed = 0;
    this.oddSlots.clear();
    this.oddIds.clear();
  }

  /** The slot of `id`, or -1. */
  find(id: string): number {
    return parseUuid(id, this.scratch, 0) ? this.lookup() : (this.oddSlots.get(id) ?? -1);
  }

  /** The slot of the id in `scratch`, or -1. */
  private lookup(): number {
    const s = this.scratch;
    const w = this.words;
    const cells = this.cells;
    for (let i = hashWords(s[0]!, s[1]!, s[2]!, s[3]!) & this.mask; ; i = (i + 1) & this.mask) {
      const v = cells[i]!;
      if (v === 0) return -1;
      const o = (v - 1) * 4;
      if (w[o] === s[0] && w[o + 1] === s[1] && w[o + 2] === s[2] && w[o + 3] === s[3]) return v - 1;
    }
  }

  /** The slot of `id`, taking a free one (tag 0) when the id is new. */
  acquire(id: string): number {
    const s = this.scratch;
    if (!parseUuid(id, s, 0)) {
      const odd = this.oddSlots.get(id);
      if (odd !== undefined) return odd;
      const slot = this.allocate();
      this.oddSlots.set(id, slot);
      this.oddIds.set(slot, id);
      return slot;
    }
    const found = this.lookup();
    if (found >= 0) return found;
    const slot = this.allocate();
    const o = slot * 4;
    this.words[o] = s[0]!;
    this.words[o + 1] = s[1]!;
    this.words[o + 2] = s[2]!;
    this.words[o + 3] = s[3]!;
    if ((this.hashed + 1) > this.cells.length * 0.7) this.rehash(this.cells.length * 2);
    this.place(slot);
    this.hashed++;
    return slot;
  }

  /** Free the slot of `id`; returns it, or -1 when the id is unknown. */
  remove(id: string): number {
    const odd = this.oddSlots.get(id);
    if (odd !== undefined) {
      this.oddSlots.delete(id);
      this.oddIds.delete(odd);
      this.release(odd);
      return odd;
    }
    const slot = this.find(id);
    if (slot < 0) return -1;
    this.unplace(slot);
    this.hashed--;
    this.release(slot);
    return slot;
  }

  /** The id held by a live slot. */
  idOf(slot: number): string {
    if (this.oddIds.size) {
      const odd = this.oddIds.get(slot);
      if (odd !== undefined) return odd;
    }
    const w = this.words;
    const o = slot * 4;
    return formatUuid(w[o]!, w[o + 1]!, w[o + 2]!, w[o + 3]!);
  }

  tag(slot: number): number {
    return this.tags[slot]!;
  }

  version(slot: number): number {
    return this.versions[slot]!;
  }

  /** Set what the owner keeps per slot (tag must not be 0 while the slot is live). */
  set(slot: number, tag: number, version: number): void {
    this.tags[slot] = tag;
    this.versions[slot] = version;
  }

  private allocate(): number {
    this.live++;
    if (this.freeHead !== NONE) {
      const slot = this.freeHead;
      this.freeHead = this.words[slot * 4]!;
      return slot;
    }
    if (this.used === this.tags.length) this.grow();
    return this.used++;
  }

  private release(slot: number): void {
    this.live--;
    this.tags[slot] = 0;
    this.versions[slot] = -1;
    this.words[slot * 4] = this.freeHead;
    this.freeHead = slot;
  }

  private grow(): void {
    const n = this.tags.length * 2;
    const words = new Uint32Array(n * 4);
    words.set(this.words);
    const tags = new Uint8Array(n);
    tags.set(this.tags);
    const versions = new Float64Array(n);
    versions.set(this.versions);
    this.words = words;
    this.tags = tags;
    this.versions = versions;
  }

  private home(slot: number): number {
    const w = this.words;
    const o = slot * 4;
    return hashWords(w[o]!, w[o + 1]!, w[o + 2]!, w[o + 3]!) & this.mask;
  }

  /** Put a slot with canonical words into the first free cell of its probe run. */
  private place(slot: number): void {
    const cells = this.cells;
    let i = this.home(slot);
    while (cells[i] !== 0) i = (i + 1) & this.mask;
    cells[i] = slot + 1;
  }

  /** Take a slot out of the cells, shifting later entries of its run back (no tombstones). */
  private unplace(slot: number): void {
    const cells = this.cells;
    const mask = this.mask;
    let i = this.home(slot);
    while (cells[i] !== slot + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; cells[j] !== 0; j = (j + 1) & mask) {
      const k = this.home(cells[j]! - 1);
      // The entry at j may move to the hole at i unless its home lies cyclically in (i, j].
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (stays) continue;
      cells[i] = cells[j]!;
      i = j;
    }
    cells[i] = 0;
  }

  private rehash(size: number): void {
    const old = this.cells;
    this.cells = new Int32Array(size);
    this.mask = size - 1;
    for (let i = 0; i < old.length; i++) if (old[i] !== 0) this.place(old[i]! - 1);
  }
}
