/**
 * One process per data directory (the embedded engine and the migration tool): an exclusive
 * SQLite lock on `<dir>/codeq.lock`, released by the kernel when the process dies.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';

/** Raised when the data directory is owned by another process. */
export class StoreLockedError extends Error {}

/** Take the directory's lock (close the returned handle to release it); StoreLockedError when held. */
export function lockDirectory(dir: string): BetterSqlite3.Database {
  const db = new Database(join(dir, 'codeq.lock'), { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = DELETE');
    db.prepare('CREATE TABLE IF NOT EXISTS owner (pid INTEGER, started_at INTEGER)').run();
    db.prepare('DELETE FROM owner').run();
    db.prepare('INSERT INTO owner (pid, started_at) VALUES (?, ?)').run(process.pid, Date.now());
  } catch (e) {
    db.close();
    const msg = e instanceof Error ? e.message : String(e);
    if (/locked|busy/i.test(msg)) throw new StoreLockedError(`data directory ${dir} is in use by another codeQ process (database is locked)`);
    throw e;
  }
  return db;
}
