import type { CleanupOutcome } from '@codeq/sdk-producer/transport';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { tag } from '../../output.js';

export default class AdminCleanup extends BaseCommand<typeof AdminCleanup> {
  static override summary = 'Delete finished tasks (and their results) past retention (admin).';
  static override examples = ['<%= config.bin %> admin cleanup', '<%= config.bin %> admin cleanup --before 2026-01-01T00:00:00Z --limit 500'];
  static override flags = {
    before: Flags.string({ summary: 'Only tasks whose retention ended before this RFC 3339 instant (default now).' }),
    limit: Flags.integer({ summary: 'At most this many (server default 1000).', min: 1 }),
  };

  async run(): Promise<CleanupOutcome> {
    const r = await this.transport.cleanup({
      ...(this.flags.before !== undefined ? { before: this.flags.before } : {}),
      ...(this.flags.limit !== undefined ? { limit: this.flags.limit } : {}),
    });
    this.log(`${tag.ok()} Deleted ${r.deleted} finished task${r.deleted === 1 ? '' : 's'} (before ${r.before})`);
    return r;
  }
}
