import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Task notes (issue 17 item 3) on the PostgreSQL engine: the lease holder's latest progress and a
 * bounded log per task, in tables of their own, deleted with their task by the purge.
 */
export class PostgresTaskNotes1764600000000 implements MigrationInterface {
  name = 'PostgresTaskNotes1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "codeq_progress" (
      "task_id" text PRIMARY KEY,
      "tenant_id" text NOT NULL,
      "attempt" integer NOT NULL,
      "progress" text NOT NULL,
      "updated_at" bigint NOT NULL
    )`);
    await q.query(`CREATE TABLE "codeq_logs" (
      "task_id" text NOT NULL,
      "n" integer NOT NULL,
      "tenant_id" text NOT NULL,
      "attempt" integer NOT NULL,
      "level" text NOT NULL,
      "message" text NOT NULL,
      "at" bigint NOT NULL,
      PRIMARY KEY ("task_id", "n")
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "codeq_logs"`);
    await q.query(`DROP TABLE "codeq_progress"`);
  }
}
