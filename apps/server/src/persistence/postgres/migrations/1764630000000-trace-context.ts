import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tracing (issue 17 item 5) on the PostgreSQL engine: the W3C trace context a task was created with,
 * on both task tables (nullable columns without a default: no table rewrite).
 */
export class PostgresTraceContext1764630000000 implements MigrationInterface {
  name = 'PostgresTraceContext1764630000000';

  async up(q: QueryRunner): Promise<void> {
    for (const t of ['codeq_tasks', 'codeq_finished']) {
      await q.query(`ALTER TABLE "${t}" ADD COLUMN "trace_parent" text`);
      await q.query(`ALTER TABLE "${t}" ADD COLUMN "trace_state" text`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['codeq_tasks', 'codeq_finished']) {
      await q.query(`ALTER TABLE "${t}" DROP COLUMN "trace_state"`);
      await q.query(`ALTER TABLE "${t}" DROP COLUMN "trace_parent"`);
    }
  }
}
