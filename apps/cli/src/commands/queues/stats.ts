import type { QueueStats } from '@codeq/sdk-producer';
import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';

export default class QueuesStats extends BaseCommand<typeof QueuesStats> {
  static override summary = 'Show ready, delayed, in-progress and dead-lettered counts of one command (admin).';
  static override aliases = ['queue:inspect'];
  static override examples = ['<%= config.bin %> queues stats email.send', '<%= config.bin %> queues stats email.send --json | jq .ready'];
  static override args = { command: Args.string({ description: 'command (queue) name', required: true }) };

  async run(): Promise<QueueStats> {
    const s = await this.retried(() => this.transport.queueStats(this.args.command));
    this.log(`READY: ${s.ready} | DELAYED: ${s.delayed} | IN_PROGRESS: ${s.inProgress} | DLQ: ${s.dlq}`);
    return s;
  }
}
