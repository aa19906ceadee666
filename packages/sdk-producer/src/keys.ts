/**
 * Idempotency keys the producer makes for a submit that brings none: RFC 9562 UUID version 7
 * (48-bit Unix milliseconds, then 74 random bits). Keys made later sort later, so the server's
 * unique index on (tenant, key) grows at its right edge instead of touching a random page per
 * insert (random v4 keys cost the embedded engine's writer 10–25 µs more per task; see README,
 * Performance). Within one millisecond the keys of one process still increase: the random part is
 * bumped instead of redrawn, and a new draw is made when the millisecond changes.
 */
import { randomFillSync } from 'node:crypto';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const POOL = 8192;
const pool = Buffer.alloc(POOL);
let at = POOL;
const bytes = Buffer.alloc(16);
let lastMs = -1;

function draw(): void {
  if (at + 10 > POOL) {
    randomFillSync(pool);
    at = 0;
  }
  pool.copy(bytes, 6, at, at + 10);
  at += 10;
  bytes[6] = 0x70 | (bytes[6]! & 0x0f); // version 7
  bytes[8] = 0x80 | (bytes[8]! & 0x3f); // variant 10xx
}

/** Bump the 74-bit random field by one (wrapping stays inside the version and variant bits). */
function bump(): void {
  for (let i = 15; i >= 9; i--) {
    if (bytes[i] !== 0xff) {
      bytes[i]!++;
      return;
    }
    bytes[i] = 0;
  }
  // the low 56 bits wrapped (odds ~2^-56): draw again rather than touch the variant byte
  draw();
}

/** A new UUIDv7 text, e.g. `0193b0f2-6c1e-7a3b-9d2e-5f0a1b2c3d4e`. */
export function newIdempotencyKey(nowMs: number = Date.now()): string {
  const ms = Math.max(0, Math.min(Math.floor(nowMs), 0xffffffffffff));
  if (ms > lastMs) {
    lastMs = ms;
    bytes.writeUIntBE(ms, 0, 6);
    draw();
  } else bump(); // same millisecond (or the clock stepped back): keep increasing
  const b = bytes;
  return (
    HEX[b[0]!]! + HEX[b[1]!]! + HEX[b[2]!]! + HEX[b[3]!]! + '-' + HEX[b[4]!]! + HEX[b[5]!]! + '-' + HEX[b[6]!]! + HEX[b[7]!]! + '-' +
    HEX[b[8]!]! + HEX[b[9]!]! + '-' + HEX[b[10]!]! + HEX[b[11]!]! + HEX[b[12]!]! + HEX[b[13]!]! + HEX[b[14]!]! + HEX[b[15]!]!
  );
}
