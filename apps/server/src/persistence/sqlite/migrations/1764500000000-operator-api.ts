import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Operator API (issue 14): last error and cancel request on tasks, listing indexes (newest first
 * per tenant, per status, optionally per command; dead letters), paused commands.
 */
export class OperatorApi1764500000000 implements MigrationInterface {
  name = 'OperatorApi1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "tasks" ADD COLUMN "last_error" text`);
    await q.query(`ALTER TABLE "tasks" ADD COLUMN "cancel_requested" integer NOT NULL DEFAULT 0`);
    await q.query(`CREATE INDEX "tasks_list_status" ON "tasks" ("tenant_id", "status", "created_at", "id")`);
    await q.query(`CREATE INDEX "tasks_list_command" ON "tasks" ("tenant_id", "command_key", "status", "created_at", "id")`);
    await q.query(`CREATE INDEX "tasks_dlq" ON "tasks" ("tenant_id", "created_at", "id") WHERE location = 'DLQ_SET'`);
    await q.query(`CREATE INDEX "tasks_dlq_command" ON "tasks" ("tenant_id", "command_key", "created_at", "id") WHERE location = 'DLQ_SET'`);
    await q.query(`CREATE TABLE "paused_commands" (
      "tenant_id" text NOT NULL,
      "command_key" text NOT NULL,
      "command" text NOT NULL,
      "paused_at" integer NOT NULL,
      PRIMARY KEY ("tenant_id", "command_key"))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "paused_commands"`);
    for (const i of ['tasks_dlq_command', 'tasks_dlq', 'tasks_list_command', 'tasks_list_status']) await q.query(`DROP INDEX "${i}"`);
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "cancel_requested"`);
    await q.query(`ALTER TABLE "tasks" DROP COLUMN "last_error"`);
  }
}
