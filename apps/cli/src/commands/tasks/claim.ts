import type { Task } from '@codeq/sdk-producer';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { taskBlock } from '../../output.js';

export default class TasksClaim extends BaseCommand<typeof TasksClaim> {
  static override tokenRole = 'worker' as const;
  static override summary = 'Claim one task (worker token).';
  static override description =
    'Leases the next ready task of the given commands and prints it with its leaseId; pass the leaseId to ' +
    '`tasks result|heartbeat|nack|abandon`. Prints "No task available" on stderr (and `null` with --json) when nothing was claimable.';
  static override examples = [
    '<%= config.bin %> tasks claim --commands email.send,report.build --lease 120 --wait 10',
    '<%= config.bin %> tasks claim --commands email.send --json | jq -r .leaseId',
  ];
  static override flags = {
    commands: Flags.string({ char: 'c', summary: 'Comma-separated commands, in priority order.', required: true, aliases: ['events'] }),
    lease: Flags.integer({ summary: 'Lease seconds (server default 300).', min: 1, aliases: ['lease-seconds'] }),
    wait: Flags.integer({ summary: 'Long-poll up to this many seconds (max 30).', min: 0, max: 30, default: 0, aliases: ['wait-seconds'] }),
  };

  async run(): Promise<Task | null> {
    const commands = this.flags.commands.split(',').map((c) => c.trim()).filter(Boolean);
    const task = await this.transport.claim({ commands, waitSeconds: this.flags.wait, ...(this.flags.lease ? { leaseSeconds: this.flags.lease } : {}) }, { timeoutMs: 30_000 });
    if (!task) {
      this.note('No task available');
      if (this.jsonEnabled()) this.logJson(null);
      return null;
    }
    this.log(taskBlock(task));
    return task;
  }
}
