import type { MigrationInterface, QueryRunner } from 'typeorm';

const TASK_COLUMNS = `
  "id" text PRIMARY KEY,
  "tenant_id" text NOT NULL,
  "command" text NOT NULL,
  "command_key" text NOT NULL,
  "payload" text NOT NULL,
  "priority" smallint NOT NULL,
  "webhook" text,
  "status" text NOT NULL,
  "location" text NOT NULL,
  "worker_id" text,
  "lease_id" text,
  "lease_until" bigint,
  "attempts" integer NOT NULL,
  "max_attempts" integer NOT NULL,
  "error" text,
  "result_key" text,
  "idempotency_key" text,
  "visible_at" bigint,
  "seq" bigint NOT NULL,
  "created_at" bigint NOT NULL,
  "updated_at" bigint NOT NULL,
  "terminal_at" bigint`;

/**
 * Schema of the PostgreSQL engine (see ../postgres-task-store.ts):
 *  - codeq_tasks: live tasks only (the hot table claims scan), with partial indexes for ready,
 *    delayed and leased rows and an optimistic-lock `version`; aggressive autovacuum;
 *  - codeq_finished: terminal tasks (moved out in the transition that finishes them);
 *  - codeq_results, codeq_idempotency (tenant, key) → task, codeq_topics;
 *  - codeq_seq: arrival order (FIFO within a priority) shared by every replica.
 */
export class PostgresSchema1764400000000 implements MigrationInterface {
  name = 'PostgresSchema1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE SEQUENCE "codeq_seq"`);
    await q.query(`CREATE TABLE "codeq_tasks" (${TASK_COLUMNS}, "version" bigint NOT NULL DEFAULT 0) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 500, autovacuum_analyze_scale_factor = 0.02)`);
    await q.query(`CREATE INDEX "codeq_tasks_ready" ON "codeq_tasks" ("tenant_id", "command_key", "priority" DESC, "seq") WHERE "location" = 'PENDING_LIST'`);
    await q.query(`CREATE INDEX "codeq_tasks_delayed" ON "codeq_tasks" ("visible_at") WHERE "location" = 'DELAYED_ZSET'`);
    await q.query(`CREATE INDEX "codeq_tasks_leases" ON "codeq_tasks" ("lease_until") WHERE "location" = 'INPROG_SET'`);
    await q.query(`CREATE INDEX "codeq_tasks_queue" ON "codeq_tasks" ("tenant_id", "command_key")`);
    await q.query(`CREATE TABLE "codeq_finished" (${TASK_COLUMNS})`);
    await q.query(`CREATE INDEX "codeq_finished_terminal" ON "codeq_finished" ("terminal_at")`);
    await q.query(`CREATE INDEX "codeq_finished_dlq" ON "codeq_finished" ("tenant_id", "command_key") WHERE "location" = 'DLQ_SET'`);
    await q.query(`CREATE TABLE "codeq_results" (
      "task_id" text PRIMARY KEY,
      "tenant_id" text NOT NULL,
      "status" text NOT NULL,
      "result" text,
      "error" text,
      "artifacts" text,
      "completed_at" bigint NOT NULL,
      "lease_id" text,
      "worker_id" text
    )`);
    await q.query(`CREATE TABLE "codeq_idempotency" ("tenant_id" text NOT NULL, "key" text NOT NULL, "task_id" text NOT NULL, PRIMARY KEY ("tenant_id", "key"))`);
    await q.query(`CREATE TABLE "codeq_topics" (
      "topic_id" text PRIMARY KEY,
      "tenant_id" text NOT NULL,
      "topic_name" text NOT NULL,
      "policy" text NOT NULL,
      "version" integer NOT NULL,
      "created_at" bigint NOT NULL,
      "updated_at" bigint NOT NULL
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['codeq_topics', 'codeq_idempotency', 'codeq_results', 'codeq_finished', 'codeq_tasks']) await q.query(`DROP TABLE "${t}"`);
    await q.query(`DROP SEQUENCE "codeq_seq"`);
  }
}
