import { newIdempotencyKey } from './keys.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newIdempotencyKey (UUIDv7)', () => {
  it('is a version-7, variant-10 UUID whose first 48 bits are the milliseconds given', () => {
    const ms = Date.UTC(2026, 11, 3, 10, 30, 0, 123);
    const k = newIdempotencyKey(ms);
    expect(k).toMatch(V7);
    expect(parseInt(k.slice(0, 8) + k.slice(9, 13), 16)).toBe(ms);
  });

  it('sorts in creation order, also many within one millisecond, and never repeats', () => {
    const ms = Date.UTC(2026, 11, 3, 11, 0, 0, 0);
    const keys: string[] = [];
    for (let i = 0; i < 5000; i++) keys.push(newIdempotencyKey(ms + Math.floor(i / 1000)));
    for (const k of keys) expect(k).toMatch(V7);
    expect(new Set(keys).size).toBe(keys.length);
    expect([...keys].sort()).toEqual(keys);
  });

  it('keeps increasing when the clock steps back', () => {
    const ms = Date.UTC(2026, 11, 3, 12, 0, 0, 0);
    const a = newIdempotencyKey(ms);
    const b = newIdempotencyKey(ms - 5000);
    expect(b > a).toBe(true);
    expect(b).toMatch(V7);
  });

  it('draws a fresh random part for each new millisecond', () => {
    const ms = Date.UTC(2026, 11, 3, 13, 0, 0, 0);
    const tails = new Set<string>();
    for (let i = 0; i < 200; i++) tails.add(newIdempotencyKey(ms + i).slice(15));
    expect(tails.size).toBe(200);
  });
});
