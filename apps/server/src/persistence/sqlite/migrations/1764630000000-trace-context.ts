import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Tracing (issue 17 item 5): the W3C trace context a task was created with (`traceparent`, `tracestate`). */
export class TraceContext1764630000000 implements MigrationInterface {
  name = 'TraceContext1764630000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "tasks" ADD COLUMN "trace_parent" text`);
    await q.query(`ALTER TABLE "tasks" ADD COLUMN "trace_state" text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "trace_state"`);
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "trace_parent"`);
  }
}
