/** The topic catalog on PostgreSQL: a memory copy on every replica, reloaded on NOTIFY codeq_topics. */
import type pg from 'pg';
import type { Topic, TopicStore } from '../../domain/topic.js';
import { rowToTopic, type Row } from '../schema.js';

export class PostgresTopicStore implements TopicStore {
  private cache = new Map<string, Topic>();

  constructor(private readonly pool: () => pg.Pool) {}

  async load(): Promise<void> {
    const r = await this.pool().query<Row>('SELECT * FROM codeq_topics');
    const m = new Map<string, Topic>();
    for (const row of r.rows) m.set(row['topic_id'] as string, rowToTopic(row));
    this.cache = m;
  }

  get(tenantId: string, name: string): Topic | null {
    return this.cache.get(`${tenantId}.${name}`) ?? null;
  }

  all(): Topic[] {
    return [...this.cache.values()];
  }

  async put(t: Topic): Promise<void> {
    await this.pool().query(
      `WITH w AS (INSERT INTO codeq_topics (topic_id, tenant_id, topic_name, policy, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (topic_id) DO UPDATE SET policy = excluded.policy, version = excluded.version, updated_at = excluded.updated_at RETURNING topic_id)
       SELECT pg_notify('codeq_topics', topic_id) FROM w`,
      [t.topicId, t.tenantId, t.topicName, JSON.stringify(t.policy), t.version, t.createdAtMs, t.updatedAtMs],
    );
    this.cache.set(t.topicId, t);
  }

  async delete(tenantId: string, name: string): Promise<void> {
    await this.pool().query(`WITH w AS (DELETE FROM codeq_topics WHERE topic_id = $1 RETURNING topic_id) SELECT pg_notify('codeq_topics', topic_id) FROM w`, [`${tenantId}.${name}`]);
    this.cache.delete(`${tenantId}.${name}`);
  }
}
