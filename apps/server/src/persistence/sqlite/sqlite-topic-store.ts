/**
 * The topic catalog of the embedded engine: rare admin writes, written directly on the main
 * connection (WAL-serialised with the writer thread by SQLite's busy timeout); reads come from a
 * memory copy loaded on first use.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Topic, TopicStore } from '../../domain/topic.js';
import { rowToTopic, type Row } from '../schema.js';

export class SqliteTopicStore implements TopicStore {
  private cache: Map<string, Topic> | null = null;

  constructor(private readonly db: () => BetterSqlite3.Database) {}

  /** Forget the memory copy (the engine reloaded from disk). */
  invalidate(): void {
    this.cache = null;
  }

  private topics(): Map<string, Topic> {
    if (!this.cache) {
      this.cache = new Map();
      for (const r of this.db().prepare(`SELECT * FROM topics`).all() as Row[]) {
        const t = rowToTopic(r);
        this.cache.set(t.topicId, t);
      }
    }
    return this.cache;
  }

  get(tenantId: string, name: string): Topic | null {
    return this.topics().get(`${tenantId}.${name}`) ?? null;
  }

  all(): Topic[] {
    return [...this.topics().values()];
  }

  async put(t: Topic): Promise<void> {
    this.db()
      .prepare(
        `INSERT INTO topics (topic_id, tenant_id, topic_name, policy, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(topic_id) DO UPDATE SET policy = excluded.policy, version = excluded.version, updated_at = excluded.updated_at`,
      )
      .run(t.topicId, t.tenantId, t.topicName, JSON.stringify(t.policy), t.version, t.createdAtMs, t.updatedAtMs);
    this.topics().set(t.topicId, t);
  }

  async delete(tenantId: string, name: string): Promise<void> {
    this.db().prepare(`DELETE FROM topics WHERE topic_id = ?`).run(`${tenantId}.${name}`);
    this.topics().delete(`${tenantId}.${name}`);
  }
}
