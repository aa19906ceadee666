/**
 * Shared set-up of the schema-upgrade tests: make a database with the current schema, take it back
 * to what an older release left (the test's `downgrade`), then open it with the current engine,
 * which must migrate it, and run the test's checks on the upgraded store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type * as PgModule from 'pg';
import type { TaskStore } from '../src/domain/task-store.js';
import { SqliteTaskStore } from '../src/persistence/sqlite/sqlite-task-store.js';
import { PostgresTaskStore } from '../src/persistence/postgres/postgres-task-store.js';
import { dropDatabase, ensureDatabase } from './pg.js';

async function checkOpened(store: TaskStore, check: (store: TaskStore) => Promise<void>): Promise<void> {
  await store.open();
  try {
    await check(store);
  } finally {
    await store.close();
  }
}

/** SQLite: `downgrade` edits `codeq.db` with better-sqlite3 between the two opens. */
export async function upgradeSqlite(downgrade: (db: Database.Database) => void, check: (store: TaskStore) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'codeq-upgrade-'));
  try {
    const first = new SqliteTaskStore({ path: dir, fsyncOnCommit: false });
    await first.open();
    await first.close();
    const db = new Database(join(dir, 'codeq.db'));
    try {
      downgrade(db);
    } finally {
      db.close();
    }
    await checkOpened(new SqliteTaskStore({ path: dir, fsyncOnCommit: false }), check);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** PostgreSQL: a database of its own (`name`), edited by `downgrade` through a plain client. */
export async function upgradePostgres(name: string, downgrade: (c: PgModule.Client) => Promise<void>, check: (store: TaskStore) => Promise<void>): Promise<void> {
  const url = await ensureDatabase(name);
  try {
    const first = new PostgresTaskStore({ url, poolSize: 2 });
    await first.open();
    await first.close();
    const pg = createRequire(import.meta.url)('pg') as typeof PgModule;
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await downgrade(c);
    } finally {
      await c.end();
    }
    await checkOpened(new PostgresTaskStore({ url, poolSize: 2 }), check);
  } finally {
    await dropDatabase(name);
  }
}
