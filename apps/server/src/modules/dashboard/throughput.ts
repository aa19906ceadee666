/**
 * Per-tenant task throughput for the dashboard: created / completed / failed counts in 10-second
 * buckets over the last hour, in a fixed ring per tenant (3 × 360 integers). Recording is a few
 * integer operations (no allocation once a tenant is known); the number of tenants is bounded
 * (the least recently seen tenant is dropped when a new one arrives at the limit).
 * Counts are this process's: with several PostgreSQL replicas each replica counts what it handled.
 */
export const BUCKET_MS = 10_000;
export const MAX_MINUTES = 60;
const SLOTS = (MAX_MINUTES * 60_000) / BUCKET_MS;

export type ThroughputKind = 'created' | 'completed' | 'failed';

interface Ring {
  created: Uint32Array;
  completed: Uint32Array;
  failed: Uint32Array;
  /** Absolute bucket number (ms / BUCKET_MS) of the newest slot written. */
  head: number;
}

export interface ThroughputBucket {
  /** Bucket start, ISO 8601. */
  at: string;
  created: number;
  completed: number;
  failed: number;
}

export interface ThroughputReport {
  bucketSeconds: number;
  minutes: number;
  buckets: ThroughputBucket[];
  totals: { created: number; completed: number; failed: number };
  /** Per second over the last full minute. */
  perSecond: { created: number; completed: number; failed: number };
}

export class ThroughputRecorder {
  private readonly rings = new Map<string, Ring>();

  constructor(private readonly maxTenants = 1000) {}

  get tenants(): number {
    return this.rings.size;
  }

  record(tenantId: string, kind: ThroughputKind, nowMs: number): void {
    let r = this.rings.get(tenantId);
    if (!r) {
      if (this.rings.size >= this.maxTenants) {
        // Map keeps insertion order; tenants are re-inserted when their ring rolls over (below),
        // so the first key is the one least recently active.
        const oldest = this.rings.keys().next().value;
        if (oldest !== undefined) this.rings.delete(oldest);
      }
      r = { created: new Uint32Array(SLOTS), completed: new Uint32Array(SLOTS), failed: new Uint32Array(SLOTS), head: Math.floor(nowMs / BUCKET_MS) };
      this.rings.set(tenantId, r);
    }
    const b = Math.floor(nowMs / BUCKET_MS);
    if (b > r.head) {
      advance(r, b);
      // Once per bucket per tenant: move it to the end of the eviction order.
      this.rings.delete(tenantId);
      this.rings.set(tenantId, r);
    }
    if (b < r.head - SLOTS + 1) return; // older than the window (clock went back a lot)
    const i = b % SLOTS;
    r[kind][i]!++;
  }

  report(tenantId: string, minutes: number, nowMs: number): ThroughputReport {
    const m = Math.max(1, Math.min(MAX_MINUTES, Math.floor(minutes)));
    const n = (m * 60_000) / BUCKET_MS;
    const end = Math.floor(nowMs / BUCKET_MS);
    const r = this.rings.get(tenantId);
    if (r && end > r.head) advance(r, end);
    const buckets: ThroughputBucket[] = [];
    const totals = { created: 0, completed: 0, failed: 0 };
    const lastMinute = { created: 0, completed: 0, failed: 0 };
    const perMinute = 60_000 / BUCKET_MS;
    for (let b = end - n + 1; b <= end; b++) {
      const i = b % SLOTS;
      const inRing = r !== undefined && b <= r.head && b > r.head - SLOTS;
      const created = inRing ? r.created[i]! : 0;
      const completed = inRing ? r.completed[i]! : 0;
      const failed = inRing ? r.failed[i]! : 0;
      buckets.push({ at: new Date(b * BUCKET_MS).toISOString(), created, completed, failed });
      totals.created += created;
      totals.completed += completed;
      totals.failed += failed;
      // The last full minute: the 6 buckets before the current (partial) one.
      if (b < end && b >= end - perMinute) {
        lastMinute.created += created;
        lastMinute.completed += completed;
        lastMinute.failed += failed;
      }
    }
    const ps = (x: number) => Math.round((x / 60) * 100) / 100;
    return {
      bucketSeconds: BUCKET_MS / 1000,
      minutes: m,
      buckets,
      totals,
      perSecond: { created: ps(lastMinute.created), completed: ps(lastMinute.completed), failed: ps(lastMinute.failed) },
    };
  }
}

/** Zero the slots between the ring's head and bucket `b`, and make `b` the head. */
function advance(r: Ring, b: number): void {
  const gap = Math.min(b - r.head, SLOTS);
  for (let k = 1; k <= gap; k++) {
    const i = (r.head + k) % SLOTS;
    r.created[i] = 0;
    r.completed[i] = 0;
    r.failed[i] = 0;
  }
  r.head = b;
}
