import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The result-webhook outbox (issue 12 item 9, ADR 0012): one row per pending delivery, written in
 * the commit that finishes its task, deleted once delivered or finally failed. The due index drives
 * the dispatcher's paged claims; created_at orders the trim beyond the configured cap.
 */
export class WebhookOutbox1764620000000 implements MigrationInterface {
  name = 'WebhookOutbox1764620000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "webhook_outbox" (${OUTBOX_TABLE_COLUMNS('integer')})`);
    await q.query(`CREATE INDEX "webhook_outbox_due" ON "webhook_outbox" ("next_attempt_at")`);
    await q.query(`CREATE INDEX "webhook_outbox_created" ON "webhook_outbox" ("created_at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "webhook_outbox"`);
  }
}

/** Columns of the outbox table (both engines; `int` is the 64-bit integer type). */
export const OUTBOX_TABLE_COLUMNS = (int: string) => `
      "id" text PRIMARY KEY,
      "tenant_id" text NOT NULL,
      "task_id" text NOT NULL,
      "command" text NOT NULL,
      "url" text NOT NULL,
      "body" text NOT NULL,
      "created_at" ${int} NOT NULL,
      "attempts" integer NOT NULL,
      "next_attempt_at" ${int} NOT NULL,
      "claimed" integer NOT NULL DEFAULT 0`;
