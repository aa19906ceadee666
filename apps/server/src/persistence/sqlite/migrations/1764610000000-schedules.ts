import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Schedules (issue 17 item 4, ADR 0008): one row per (tenant, name); the due index drives the loop. */
export class Schedules1764610000000 implements MigrationInterface {
  name = 'Schedules1764610000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "schedules" (${SCHEDULE_COLUMNS('integer')},
      PRIMARY KEY ("tenant_id", "name"))`);
    await q.query(`CREATE INDEX "schedules_due" ON "schedules" ("next_run_at") WHERE "paused" = 0`);
    await q.query(`CREATE INDEX "schedules_pending" ON "schedules" ("pending_slot") WHERE "pending_slot" IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "schedules"`);
  }
}

/** Columns of the schedules table (both engines; `int` is the 64-bit integer type). */
export const SCHEDULE_COLUMNS = (int: string) => `
      "tenant_id" text NOT NULL,
      "name" text NOT NULL,
      "command" text NOT NULL,
      "payload" text NOT NULL,
      "priority" integer NOT NULL,
      "max_attempts" integer NOT NULL,
      "webhook" text,
      "cron" text,
      "every_seconds" integer,
      "timezone" text NOT NULL,
      "overlap" text NOT NULL,
      "jitter_seconds" integer NOT NULL,
      "missed" text NOT NULL,
      "paused" integer NOT NULL,
      "next_run_at" ${int} NOT NULL,
      "last_run_at" ${int},
      "last_task_id" text,
      "pending_slot" ${int},
      "last_error" text,
      "created_at" ${int} NOT NULL,
      "updated_at" ${int} NOT NULL`;
