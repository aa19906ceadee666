import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { tag } from '../../output.js';

export default class TasksAbandon extends BaseCommand<typeof TasksAbandon> {
  static override tokenRole = 'worker' as const;
  static override summary = 'Release a claimed task at once, without using up an attempt (worker token).';
  static override examples = ['<%= config.bin %> tasks abandon 3f0c… --lease-id 7fcc…'];
  static override args = { id: Args.string({ description: 'task id', required: true }) };
  static override flags = {
    'lease-id': Flags.string({ summary: 'Lease to fence the call to (from `tasks claim`).' }),
  };

  async run(): Promise<{ id: string; status: string }> {
    const r = await this.transport.abandon(this.args.id, this.flags['lease-id'] ? { leaseId: this.flags['lease-id'] } : {});
    this.log(`${tag.ok()} Task abandoned: ${this.args.id} (${r.status})`);
    return { id: this.args.id, ...r };
  }
}
