/**
 * PostgreSQL for the tests. CODEQ_TEST_PG_URL points at a server where the tests may create
 * databases (scripts/test.sh starts a throwaway one with scripts/pg-throwaway.sh). When it is set,
 * the integration harness runs every server on PostgreSQL instead of SQLite.
 */
import { createRequire } from 'node:module';
import type * as PgModule from 'pg';
import type { Client } from 'pg';

export const PG_URL: string | undefined = process.env['CODEQ_TEST_PG_URL'] || undefined;

async function adminClient(): Promise<Client> {
  const pg = createRequire(import.meta.url)('pg') as typeof PgModule;
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  return c;
}

/** The URL of database `name` on the test server, created if missing. */
export async function ensureDatabase(name: string): Promise<string> {
  if (!PG_URL) throw new Error('CODEQ_TEST_PG_URL is not set');
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
  const c = await adminClient();
  try {
    const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!exists.rowCount) await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function dropDatabase(name: string): Promise<void> {
  if (!PG_URL) return;
  const c = await adminClient();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

/** A database name derived from a temp directory, so a restart on the same dir finds the same data. */
export function databaseFor(dir: string): string {
  return `codeq_t_${dir.replace(/^.*[\\/]/, '').toLowerCase().replace(/[^a-z0-9]/g, '_')}`;
}
