import { CodeqError } from '@codeq/proto';
import { Coalescer, type ItemOutcome } from './coalescer.js';
import { resolveRetry } from './transport/retry.js';

interface Item {
  key: string;
  n: number;
}

/**
 * A stand-in for the server side of a batch call: creates are deduplicated by idempotency key
 * (like the server), so a retried batch finds what an earlier attempt committed. `script` can
 * fail a call before or after it "committed".
 */
function fakeServer(script: (call: number, items: readonly Item[]) => 'ok' | 'fail-before' | 'fail-after' = () => 'ok') {
  const byKey = new Map<string, string>();
  const calls: Item[][] = [];
  let ids = 0;
  const commit = (it: Item): ItemOutcome<string> => {
    if (it.n < 0) return { error: new CodeqError('VALIDATION_FAILED', `bad item ${it.n}`) };
    let id = byKey.get(it.key);
    if (!id) byKey.set(it.key, (id = `task-${++ids}`));
    return { value: id };
  };
  const broken = () => new CodeqError('UNAVAILABLE', 'the producer stream closed', { network: true });
  const handle = async (items: readonly Item[]): Promise<ItemOutcome<string>[]> => {
    calls.push([...items]);
    await new Promise((r) => setTimeout(r, 2));
    const how = script(calls.length, items);
    if (how === 'fail-before') throw broken();
    const out = items.map(commit);
    if (how === 'fail-after') throw broken(); // committed, but the answer was lost (reconnect)
    return out;
  };
  return {
    byKey,
    calls,
    sendMany: handle,
    sendOne: async (it: Item) => {
      const [o] = await handle([it]);
      if (o!.error) throw o!.error;
      return o!.value;
    },
  };
}

const retry = resolveRetry({ initialMs: 1, maxMs: 5, maxAttempts: 5 });
const items = (n: number, from = 0): Item[] => Array.from({ length: n }, (_, i) => ({ key: `k${from + i}`, n: from + i }));

describe('Coalescer', () => {
  it('sends the submits of one turn as one batch, in submission order, each caller getting its own outcome', async () => {
    const s = fakeServer();
    const c = new Coalescer<Item, string>({ ...s, lingerMs: 0, maxBatch: 100, retry });
    const out = await Promise.all(items(30).map((it) => c.submit(it)));
    expect(s.calls).toHaveLength(1);
    expect(s.calls[0]!.map((i) => i.n)).toEqual(items(30).map((i) => i.n));
    expect(out).toEqual(items(30).map((it) => s.byKey.get(it.key)));
    expect(new Set(out).size).toBe(30);
  });

  it('splits at maxBatch and keeps the order across batches', async () => {
    const s = fakeServer();
    const c = new Coalescer<Item, string>({ ...s, lingerMs: 0, maxBatch: 7, retry });
    await Promise.all(items(20).map((it) => c.submit(it)));
    expect(s.calls.map((b) => b.length)).toEqual([7, 7, 6]);
    expect(s.calls.flat().map((i) => i.n)).toEqual(items(20).map((i) => i.n));
  });

  it('a lone submit uses the single-item call; lingerMs gathers submits of later turns', async () => {
    const s = fakeServer();
    let singles = 0;
    const one = (it: Item) => (singles++, s.sendOne(it));
    const c = new Coalescer<Item, string>({ ...s, sendOne: one, lingerMs: 30, maxBatch: 100, retry });
    const a = c.submit({ key: 'a', n: 1 });
    await new Promise((r) => setTimeout(r, 5)); // a later turn, still inside the linger
    const b = c.submit({ key: 'b', n: 2 });
    await Promise.all([a, b]);
    expect(s.calls).toHaveLength(1);
    expect(s.calls[0]!.map((i) => i.key)).toEqual(['a', 'b']);
    await c.submit({ key: 'c', n: 3 });
    expect(singles).toBe(1);
  });

  it('per-item errors reach only their own caller', async () => {
    const s = fakeServer();
    const c = new Coalescer<Item, string>({ ...s, lingerMs: 0, maxBatch: 100, retry });
    const all = [{ key: 'x0', n: 0 }, { key: 'x1', n: -1 }, { key: 'x2', n: 2 }, { key: 'x3', n: -3 }];
    const res = await Promise.allSettled(all.map((it) => c.submit(it)));
    expect(s.calls).toHaveLength(1); // validation errors are not retried
    expect(res.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    expect((res[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'VALIDATION_FAILED', message: 'bad item -1' });
    expect((res[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'VALIDATION_FAILED', message: 'bad item -3' });
  });

  it('a whole-batch failure is retried with the same items (same idempotency keys) and duplicates nothing', async () => {
    // First batch: committed on the "server", then the stream breaks before the acks (a reconnect
    // in the middle of a batch). Second: fails before committing anything. Third: answers.
    const s = fakeServer((call) => (call === 1 ? 'fail-after' : call === 2 ? 'fail-before' : 'ok'));
    const c = new Coalescer<Item, string>({ ...s, lingerMs: 0, maxBatch: 100, retry });
    const batch = items(50);
    const out = await Promise.all(batch.map((it) => c.submit(it)));
    expect(s.calls.length).toBeGreaterThanOrEqual(3);
    for (const call of s.calls) expect(new Set(call.map((i) => i.key)).size).toBe(call.length);
    expect(s.calls.flat().every((i) => i.key === `k${i.n}`)).toBe(true); // keys never change between attempts
    expect(s.byKey.size).toBe(50); // nothing created twice
    expect(out).toEqual(batch.map((it) => s.byKey.get(it.key)));
  });

  it('a batch too large for the server is split until the parts fit; an item too large alone fails alone', async () => {
    const s = fakeServer();
    const calls: number[] = [];
    const limit = 4; // the "server" takes at most 4 items' worth of body
    const sendMany = async (items: readonly Item[]) => {
      calls.push(items.length);
      const weight = items.reduce((a, i) => a + (i.key === 'huge' ? 100 : 1), 0);
      if (weight > limit) throw new CodeqError('PAYLOAD_TOO_LARGE', 'request body too large');
      return s.sendMany(items);
    };
    const sendOne = async (it: Item) => {
      calls.push(1);
      if (it.key === 'huge') throw new CodeqError('PAYLOAD_TOO_LARGE', 'request body too large');
      return s.sendOne(it);
    };
    const c = new Coalescer<Item, string>({ sendMany, sendOne, lingerMs: 0, maxBatch: 100, retry });
    const all = [...items(9), { key: 'huge', n: 99 }];
    const res = await Promise.allSettled(all.map((it) => c.submit(it)));
    expect(res.slice(0, 9).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(res[9]).toMatchObject({ status: 'rejected', reason: { code: 'PAYLOAD_TOO_LARGE' } });
    expect(s.byKey.size).toBe(9);
    expect(calls[0]).toBe(10);
  });

  it('gives up per item after maxAttempts with the last error', async () => {
    const s = fakeServer(() => 'fail-before');
    const c = new Coalescer<Item, string>({ ...s, lingerMs: 0, maxBatch: 100, retry: resolveRetry({ initialMs: 1, maxMs: 2, maxAttempts: 3 }) });
    const res = await Promise.allSettled(items(4).map((it) => c.submit(it)));
    expect(res.every((r) => r.status === 'rejected' && (r.reason as CodeqError).code === 'UNAVAILABLE')).toBe(true);
    expect(s.calls.flat()).toHaveLength(12); // 4 items × 3 attempts
  });

  it('an aborted signal removes a queued item before it is sent; the others go out', async () => {
    const s = fakeServer();
    const c = new Coalescer<Item, string>({ ...s, lingerMs: 0, maxBatch: 100, retry });
    const ac = new AbortController();
    const ps = items(5).map((it, i) => c.submit(it, i === 2 ? ac.signal : undefined));
    ac.abort();
    const res = await Promise.allSettled(ps);
    expect(res[2]).toMatchObject({ status: 'rejected', reason: { name: 'AbortError' } });
    expect(res.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    expect(s.calls.flat().map((i) => i.key)).toEqual(['k0', 'k1', 'k3', 'k4']);
    expect(s.byKey.has('k2')).toBe(false);
  });

  it('an abort during a retry backoff stops that item only', async () => {
    const s = fakeServer((call) => (call === 1 ? 'fail-before' : 'ok'));
    const c = new Coalescer<Item, string>({ ...s, lingerMs: 0, maxBatch: 100, retry: resolveRetry({ initialMs: 200, maxMs: 200, jitter: 0 }) });
    const ac = new AbortController();
    const ps = items(3).map((it, i) => c.submit(it, i === 0 ? ac.signal : undefined));
    await new Promise((r) => setTimeout(r, 50)); // first batch failed, items wait for their retry
    expect(c.queued).toBe(3);
    ac.abort(new Error('caller gave up'));
    const res = await Promise.allSettled(ps);
    expect(res[0]).toMatchObject({ status: 'rejected', reason: { message: 'caller gave up' } });
    expect(res.slice(1).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(s.calls[1]!.map((i) => i.key)).toEqual(['k1', 'k2']);
  });

  it('an already aborted signal rejects without sending', async () => {
    const s = fakeServer();
    const c = new Coalescer<Item, string>({ ...s, lingerMs: 0, maxBatch: 100, retry });
    await expect(c.submit({ key: 'a', n: 1 }, AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });
    await new Promise((r) => setImmediate(r));
    expect(s.calls).toHaveLength(0);
  });

  it('close() sends what is queued, then later submits reject', async () => {
    const s = fakeServer();
    const c = new Coalescer<Item, string>({ ...s, lingerMs: 1000, maxBatch: 100, retry });
    const ps = items(3).map((it) => c.submit(it));
    await c.close();
    await expect(Promise.all(ps)).resolves.toHaveLength(3);
    await expect(c.submit({ key: 'late', n: 9 })).rejects.toMatchObject({ code: 'UNAVAILABLE', details: { closed: true } });
  });
});
