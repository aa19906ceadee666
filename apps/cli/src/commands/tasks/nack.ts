import type { NackOutcome } from '@codeq/sdk-producer/transport';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { tag } from '../../output.js';

export default class TasksNack extends BaseCommand<typeof TasksNack> {
  static override tokenRole = 'worker' as const;
  static override summary = 'Give a claimed task back for a later retry (worker token).';
  static override description = 'Without --delay the server picks the delay (its backoff policy). The last allowed delivery dead-letters the task.';
  static override examples = ["<%= config.bin %> tasks nack 3f0c… --delay 30 --reason 'upstream busy' --lease-id 7fcc…"];
  static override args = { id: Args.string({ description: 'task id', required: true }) };
  static override flags = {
    delay: Flags.integer({ summary: 'Seconds before the retry.', min: 0, aliases: ['delay-seconds'] }),
    reason: Flags.string({ summary: 'Why (kept as the error if the task is dead-lettered).' }),
    'lease-id': Flags.string({ summary: 'Lease to fence the call to (from `tasks claim`).' }),
  };

  async run(): Promise<NackOutcome & { id: string }> {
    const r = await this.transport.nack(this.args.id, {
      ...(this.flags.delay !== undefined ? { delaySeconds: this.flags.delay } : {}),
      ...(this.flags.reason !== undefined ? { reason: this.flags.reason } : {}),
      ...(this.flags['lease-id'] ? { leaseId: this.flags['lease-id'] } : {}),
    });
    this.log(`${tag.ok()} Task nacked: ${this.args.id} (${r.status === 'dlq' ? 'dead-lettered' : `requeued, retry in ${r.delaySeconds}s`})`);
    return { id: this.args.id, ...r };
  }
}
