/**
 * goJson's copy-free path for values already in Go's key order must give the same text as
 * sorting a full copy (the reference below is the straightforward implementation).
 */
import { goJson } from './go-json.js';

function reference(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === 'object') {
      const src = v as Record<string, unknown>;
      const keys = Object.keys(src);
      keys.sort(keys.some((k) => /[\uD800-\uFFFF]/.test(k)) ? (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) : undefined);
      const out = Object.create(null) as Record<string, unknown>;
      for (const k of keys) out[k] = sort(src[k]);
      return out;
    }
    return v;
  };
  const s = JSON.stringify(sort(value)) ?? 'null';
  return s.replace(/[<>&\u2028\u2029]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** A small deterministic PRNG (the cases are reproducible). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const KEYS = ['a', 'b', 'B', 'z', '1', '2', '10', '9', 'é', '\uE000', '\uD83D\uDE00', '__proto__', 'seq', 't0', 'kind', 'pad', '<', ''];

function randomValue(r: () => number, depth: number): unknown {
  const x = r();
  if (depth <= 0 || x < 0.35) {
    const p = r();
    if (p < 0.2) return Math.floor(r() * 1e6) - 5e5;
    if (p < 0.3) return r() * 1e22;
    if (p < 0.5) return ['x', '<b>&', '\u2028', 'ü', ''][Math.floor(r() * 5)];
    if (p < 0.6) return null;
    if (p < 0.7) return r() < 0.5;
    return `s${Math.floor(r() * 100)}`;
  }
  if (x < 0.55) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth - 1));
  // Objects as JSON.parse makes them: keys in a random insertion order, sometimes already sorted.
  const keys = KEYS.filter(() => r() < 0.3);
  if (r() < 0.5) keys.sort();
  const text = `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(randomValue(r, depth - 1)) ?? 'null'}`).join(',')}}`;
  return JSON.parse(text) as unknown;
}

describe('goJson', () => {
  it('matches sorting a full copy on 3,000 random JSON values (sorted, unsorted, integer-like, non-BMP and __proto__ keys)', () => {
    const r = rng(13);
    for (let i = 0; i < 3000; i++) {
      const v = randomValue(r, 4);
      expect(goJson(v)).toBe(reference(v));
    }
  });

  it('treats sorted plain objects, null-prototype objects, nested arrays and non-plain objects like before', () => {
    const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, b: { d: 1, c: 2 } });
    const cases: unknown[] = [
      { a: 1, b: [1, 2, { c: 3 }], c: 'x' },
      { a: [[], [{}], [{ b: 1, a: 2 }]] },
      nullProto,
      new Date(0),
      [undefined, () => 1, { a: undefined }],
      JSON.parse('{"__proto__":{"x":1},"a":1}'),
      { 2: 'two', 10: 'ten', a: 'a' },
    ];
    for (const v of cases) expect(goJson(v)).toBe(reference(v));
  });

  it('keeps a `__proto__` key of the payload (JSON.parse makes it an own key; Go keeps it)', () => {
    expect(goJson(JSON.parse('{"b":1,"__proto__":{"x":1}}'))).toBe('{"__proto__":{"x":1},"b":1}');
    expect(goJson(JSON.parse('{"z":{"__proto__":5,"a":[{"__proto__":null}]}}'))).toBe('{"z":{"__proto__":5,"a":[{"__proto__":null}]}}');
  });

  it('does not modify its input', () => {
    const v = { b: { d: 1, c: [{ f: 1, e: 2 }] }, a: 1 };
    const before = JSON.stringify(v);
    goJson(v);
    expect(JSON.stringify(v)).toBe(before);
  });
});
