import { BUCKET_MS, ThroughputRecorder } from './throughput.js';

const T0 = 1_800_000_000_000; // a bucket boundary (divisible by 10 s)

describe('ThroughputRecorder', () => {
  it('counts per tenant in 10 s buckets, newest last', () => {
    const r = new ThroughputRecorder();
    r.record('a', 'created', T0 + 1);
    r.record('a', 'created', T0 + 9_999);
    r.record('a', 'completed', T0 + BUCKET_MS);
    r.record('a', 'failed', T0 + BUCKET_MS + 5);
    r.record('b', 'created', T0);
    const rep = r.report('a', 1, T0 + BUCKET_MS + 10);
    expect(rep.buckets).toHaveLength(6);
    expect(rep.buckets[5]).toEqual({ at: new Date(T0 + BUCKET_MS).toISOString(), created: 0, completed: 1, failed: 1 });
    expect(rep.buckets[4]).toEqual({ at: new Date(T0).toISOString(), created: 2, completed: 0, failed: 0 });
    expect(rep.totals).toEqual({ created: 2, completed: 1, failed: 1 });
    expect(r.report('b', 1, T0 + BUCKET_MS).totals.created).toBe(1);
    expect(r.report('nobody', 5, T0).totals).toEqual({ created: 0, completed: 0, failed: 0 });
  });

  it('per-second rates cover the last full minute, not the current bucket', () => {
    const r = new ThroughputRecorder();
    for (let i = 0; i < 120; i++) r.record('a', 'created', T0 + (i % 6) * BUCKET_MS); // 120 in one minute
    r.record('a', 'created', T0 + 6 * BUCKET_MS); // the current, partial bucket
    const rep = r.report('a', 5, T0 + 6 * BUCKET_MS + 1);
    expect(rep.perSecond.created).toBe(2);
    expect(rep.totals.created).toBe(121);
  });

  it('forgets buckets older than the window and after a long idle gap', () => {
    const r = new ThroughputRecorder();
    r.record('a', 'created', T0);
    expect(r.report('a', 1, T0 + 30_000).totals.created).toBe(1);
    expect(r.report('a', 1, T0 + 70_000).totals.created).toBe(0);
    expect(r.report('a', 60, T0 + 59 * 60_000).totals.created).toBe(1);
    r.record('a', 'completed', T0 + 3 * 3600_000); // ring wraps several times
    const rep = r.report('a', 60, T0 + 3 * 3600_000);
    expect(rep.totals).toEqual({ created: 0, completed: 1, failed: 0 });
  });

  it('ignores events from before the window (clock stepped back) and clamps minutes', () => {
    const r = new ThroughputRecorder();
    r.record('a', 'created', T0 + 2 * 3600_000);
    r.record('a', 'created', T0); // two hours earlier: outside the ring
    expect(r.report('a', 60, T0 + 2 * 3600_000).totals.created).toBe(1);
    expect(r.report('a', 1000, T0).minutes).toBe(60);
    expect(r.report('a', 0, T0).minutes).toBe(1);
  });

  it('keeps a bounded number of tenants, dropping the least recently active', () => {
    const r = new ThroughputRecorder(3);
    r.record('a', 'created', T0);
    r.record('b', 'created', T0);
    r.record('c', 'created', T0);
    r.record('a', 'created', T0 + BUCKET_MS); // a is active again: b is now the oldest
    r.record('d', 'created', T0 + BUCKET_MS);
    expect(r.tenants).toBe(3);
    expect(r.report('b', 1, T0 + BUCKET_MS).totals.created).toBe(0);
    expect(r.report('a', 1, T0 + BUCKET_MS).totals.created).toBe(2);
    expect(r.report('d', 1, T0 + BUCKET_MS).totals.created).toBe(1);
  });
});
