import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Task notes (issue 17 item 3): the lease holder's latest progress and a bounded log per task,
 * in tables of their own (never loaded into the memory indexes), deleted with their task.
 */
export class TaskNotes1764600000000 implements MigrationInterface {
  name = 'TaskNotes1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "task_progress" (
      "task_id" text PRIMARY KEY NOT NULL,
      "tenant_id" text NOT NULL,
      "attempt" integer NOT NULL,
      "progress" text NOT NULL,
      "updated_at" integer NOT NULL)`);
    await q.query(`CREATE TABLE "task_logs" (
      "task_id" text NOT NULL,
      "n" integer NOT NULL,
      "tenant_id" text NOT NULL,
      "attempt" integer NOT NULL,
      "level" text NOT NULL,
      "message" text NOT NULL,
      "at" integer NOT NULL,
      PRIMARY KEY ("task_id", "n")) WITHOUT ROWID`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "task_logs"`);
    await q.query(`DROP TABLE "task_progress"`);
  }
}
