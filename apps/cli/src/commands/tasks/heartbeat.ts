import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { tag } from '../../output.js';

export default class TasksHeartbeat extends BaseCommand<typeof TasksHeartbeat> {
  static override tokenRole = 'worker' as const;
  static override summary = 'Extend the lease of a claimed task (worker token).';
  static override examples = ['<%= config.bin %> tasks heartbeat 3f0c… --extend 120 --lease-id 7fcc…'];
  static override args = { id: Args.string({ description: 'task id', required: true }) };
  static override flags = {
    extend: Flags.integer({ summary: 'New lease length from now, in seconds (server default 300).', min: 1, aliases: ['extend-seconds'] }),
    'lease-id': Flags.string({ summary: 'Lease to fence the call to (from `tasks claim`).' }),
  };

  async run(): Promise<{ id: string; leaseUntil?: string }> {
    const r = await this.transport.heartbeat(this.args.id, {
      ...(this.flags.extend ? { extendSeconds: this.flags.extend } : {}),
      ...(this.flags['lease-id'] ? { leaseId: this.flags['lease-id'] } : {}),
    });
    this.log(`${tag.ok()} Lease extended: ${this.args.id}${r.leaseUntil ? ` until ${r.leaseUntil}` : ''}`);
    return { id: this.args.id, ...r };
  }
}
