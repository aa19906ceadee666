import type { MigrationInterface, QueryRunner } from 'typeorm';
import { OUTBOX_TABLE_COLUMNS } from '../../sqlite/migrations/1764620000000-webhook-outbox.js';

/** The result-webhook outbox on the PostgreSQL engine (issue 12 item 9, ADR 0012): shared by every replica. */
export class PostgresWebhookOutbox1764620000000 implements MigrationInterface {
  name = 'PostgresWebhookOutbox1764620000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "codeq_webhook_outbox" (${OUTBOX_TABLE_COLUMNS('bigint')})`);
    await q.query(`CREATE INDEX "codeq_webhook_outbox_due" ON "codeq_webhook_outbox" ("next_attempt_at")`);
    await q.query(`CREATE INDEX "codeq_webhook_outbox_created" ON "codeq_webhook_outbox" ("created_at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "codeq_webhook_outbox"`);
  }
}
