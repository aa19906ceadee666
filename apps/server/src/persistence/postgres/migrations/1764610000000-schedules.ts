import type { MigrationInterface, QueryRunner } from 'typeorm';
import { SCHEDULE_COLUMNS } from '../../sqlite/migrations/1764610000000-schedules.js';

/** Schedules on the PostgreSQL engine (issue 17 item 4, ADR 0008): shared by every replica. */
export class PostgresSchedules1764610000000 implements MigrationInterface {
  name = 'PostgresSchedules1764610000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "codeq_schedules" (${SCHEDULE_COLUMNS('bigint')},
      PRIMARY KEY ("tenant_id", "name"))`);
    await q.query(`CREATE INDEX "codeq_schedules_due" ON "codeq_schedules" ("next_run_at") WHERE "paused" = 0`);
    await q.query(`CREATE INDEX "codeq_schedules_pending" ON "codeq_schedules" ("pending_slot") WHERE "pending_slot" IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "codeq_schedules"`);
  }
}
