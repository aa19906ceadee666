import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Initial schema of the embedded engine (matches ../entities.ts). */
export class InitialSchema1764300000000 implements MigrationInterface {
  name = 'InitialSchema1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "tasks" (
      "id" text PRIMARY KEY NOT NULL,
      "tenant_id" text NOT NULL,
      "command" text NOT NULL,
      "command_key" text NOT NULL,
      "payload" text NOT NULL,
      "priority" integer NOT NULL,
      "webhook" text,
      "status" text NOT NULL,
      "location" text NOT NULL,
      "worker_id" text,
      "lease_id" text,
      "lease_until" integer,
      "attempts" integer NOT NULL,
      "max_attempts" integer NOT NULL,
      "error" text,
      "result_key" text,
      "idempotency_key" text,
      "visible_at" integer,
      "seq" integer NOT NULL,
      "created_at" integer NOT NULL,
      "updated_at" integer NOT NULL,
      "terminal_at" integer)`);
    await q.query(`CREATE UNIQUE INDEX "tasks_idempotency" ON "tasks" ("tenant_id", "idempotency_key") WHERE idempotency_key IS NOT NULL`);
    await q.query(`CREATE INDEX "tasks_terminal" ON "tasks" ("terminal_at") WHERE terminal_at IS NOT NULL`);
    await q.query(`CREATE INDEX "tasks_live" ON "tasks" ("seq") WHERE terminal_at IS NULL`);
    await q.query(`CREATE TABLE "results" (
      "task_id" text PRIMARY KEY NOT NULL,
      "tenant_id" text NOT NULL,
      "status" text NOT NULL,
      "result" text,
      "error" text,
      "artifacts" text,
      "completed_at" integer NOT NULL,
      "lease_id" text,
      "worker_id" text)`);
    await q.query(`CREATE TABLE "meta" ("key" text PRIMARY KEY NOT NULL, "value" text NOT NULL)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "meta"`);
    await q.query(`DROP TABLE "results"`);
    await q.query(`DROP TABLE "tasks"`);
  }
}
