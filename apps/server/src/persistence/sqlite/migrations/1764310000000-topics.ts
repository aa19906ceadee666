import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The tenant topic catalog. */
export class Topics1764310000000 implements MigrationInterface {
  name = 'Topics1764310000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "topics" (
      "topic_id" text PRIMARY KEY NOT NULL,
      "tenant_id" text NOT NULL,
      "topic_name" text NOT NULL,
      "policy" text NOT NULL,
      "version" integer NOT NULL,
      "created_at" integer NOT NULL,
      "updated_at" integer NOT NULL)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "topics"`);
  }
}
