import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Operator API (issue 14) on the PostgreSQL engine: last error and cancel request on tasks,
 * listing indexes on both task tables (per tenant and status, optionally per command; dead
 * letters), and the paused commands every replica's claim statement checks.
 */
export class PostgresOperatorApi1764500000000 implements MigrationInterface {
  name = 'PostgresOperatorApi1764500000000';

  async up(q: QueryRunner): Promise<void> {
    for (const t of ['codeq_tasks', 'codeq_finished']) {
      await q.query(`ALTER TABLE "${t}" ADD COLUMN "last_error" text`);
      await q.query(`ALTER TABLE "${t}" ADD COLUMN "cancel_requested" integer NOT NULL DEFAULT 0`);
      await q.query(`CREATE INDEX "${t}_list_status" ON "${t}" ("tenant_id", "status", "created_at", "id")`);
      await q.query(`CREATE INDEX "${t}_list_command" ON "${t}" ("tenant_id", "command_key", "status", "created_at", "id")`);
    }
    await q.query(`CREATE INDEX "codeq_finished_dlq_list" ON "codeq_finished" ("tenant_id", "created_at", "id") WHERE "location" = 'DLQ_SET'`);
    await q.query(`CREATE INDEX "codeq_finished_dlq_command" ON "codeq_finished" ("tenant_id", "command_key", "created_at", "id") WHERE "location" = 'DLQ_SET'`);
    await q.query(`CREATE TABLE "codeq_paused" (
      "tenant_id" text NOT NULL,
      "command_key" text NOT NULL,
      "command" text NOT NULL,
      "paused_at" bigint NOT NULL,
      PRIMARY KEY ("tenant_id", "command_key")
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "codeq_paused"`);
    await q.query(`DROP INDEX "codeq_finished_dlq_command"`);
    await q.query(`DROP INDEX "codeq_finished_dlq_list"`);
    for (const t of ['codeq_tasks', 'codeq_finished']) {
      await q.query(`DROP INDEX "${t}_list_command"`);
      await q.query(`DROP INDEX "${t}_list_status"`);
      await q.query(`ALTER TABLE "${t}" DROP COLUMN "cancel_requested"`);
      await q.query(`ALTER TABLE "${t}" DROP COLUMN "last_error"`);
    }
  }
}
