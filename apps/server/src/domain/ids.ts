/**
 * Task ids: RFC 4122 version-4-shaped UUIDs (version nibble 4, variant 10xx, so every client that
 * validates upstream's UUID v4 ids accepts them) whose first 48 bits are the creation time in
 * milliseconds and whose other 74 bits are random. Ids made later sort later, so the engines'
 * primary-key B-trees grow at their right edge instead of touching a random page per insert
 * (measured: the SQLite writer's cost per task drops sharply; see docs/adr/0002). 74 random bits
 * per millisecond keep collisions out of reach; ids are identifiers, not secrets (every route is
 * tenant-checked).
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 16 * 512;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;
const bytes = Buffer.alloc(16);

/** A new time-ordered task id, e.g. `0193b0f2-6c1e-4a3b-9d2e-5f0a1b2c3d4e`. */
export function newTaskId(nowMs: number = Date.now()): string {
  if (poolOffset + 10 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  bytes.writeUIntBE(Math.max(0, Math.min(nowMs, 0xffffffffffff)), 0, 6);
  pool.copy(bytes, 6, poolOffset, poolOffset + 10);
  poolOffset += 10;
  bytes[6] = 0x40 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
