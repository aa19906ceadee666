import { createProducer, type RedriveOutcome } from '@codeq/sdk-producer';
import { CodeqError } from '@codeq/proto';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { tag } from '../../output.js';

export default class DlqRedrive extends BaseCommand<typeof DlqRedrive> {
  static override summary = 'Move dead-lettered tasks back to the ready queue, attempts reset (admin).';
  static override description =
    'Either --ids (comma-separated task ids) or --command with --limit (oldest first, default 100, at most 1000). Ids that are not dead-lettered (already redriven, unknown) are skipped; redriving twice moves nothing the second time.';
  static override examples = ['<%= config.bin %> dlq redrive --ids 3f0c…,9a1b…', '<%= config.bin %> dlq redrive --command email.send --limit 500'];
  static override flags = {
    ids: Flags.string({ summary: 'Comma-separated task ids.', exclusive: ['command'] }),
    command: Flags.string({ char: 'c', summary: 'Redrive the dead letters of this command.', exclusive: ['ids'] }),
    limit: Flags.integer({ char: 'n', summary: 'With --command: at most this many (1..1000, default 100).', min: 1, max: 1000, dependsOn: ['command'] }),
  };

  async run(): Promise<RedriveOutcome> {
    const f = this.flags;
    const ids = f.ids?.split(',').map((s) => s.trim()).filter(Boolean);
    if (!ids?.length && !f.command) throw new CodeqError('VALIDATION_FAILED', 'give --ids a,b or --command <command> [--limit N]');
    // No retry: a repeated redrive after a lost answer would report 0 moved.
    const producer = createProducer({ transport: this.transport, retry: false });
    const r = await producer.admin.dlq.redrive(ids?.length ? { ids } : { command: f.command!, ...(f.limit !== undefined ? { limit: f.limit } : {}) });
    this.log(`${tag.ok()} Redriven: ${r.redriven} task${r.redriven === 1 ? '' : 's'}`);
    for (const id of r.ids) this.log(id);
    return r;
  }
}
