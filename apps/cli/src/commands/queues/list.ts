import { createProducer, type CommandOverview } from '@codeq/sdk-producer';
import { BaseCommand, CLI_RETRY } from '../../base-command.js';
import { table } from '../../output.js';

export default class QueuesList extends BaseCommand<typeof QueuesList> {
  static override summary = "List the commands of the token's tenant with their counts (admin).";
  static override description = 'One row per command: READY, DELAYED, IN_PROGRESS, DLQ and PAUSED (paused commands are listed even without tasks). --json prints {"commands":[…]}.';
  static override examples = ['<%= config.bin %> queues list', '<%= config.bin %> queues list --json | jq ".commands[] | select(.dlq > 0)"'];

  async run(): Promise<{ commands: CommandOverview[] }> {
    const commands = await createProducer({ transport: this.transport, retry: CLI_RETRY }).admin.queues();
    if (commands.length === 0) this.note('No commands');
    else this.log(table(['COMMAND', 'READY', 'DELAYED', 'IN_PROGRESS', 'DLQ', 'PAUSED'], commands.map((c) => [c.command, c.ready, c.delayed, c.inProgress, c.dlq, c.paused ? 'yes' : 'no'])));
    return { commands };
  }
}
