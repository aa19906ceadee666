import { createProducer } from '@codeq/sdk-producer';
import { Args } from '@oclif/core';
import { BaseCommand, CLI_RETRY } from '../../base-command.js';
import { tag } from '../../output.js';

export default class QueuesPause extends BaseCommand<typeof QueuesPause> {
  static override summary = 'Pause a command: creates are accepted, no task is handed out (admin).';
  static override description = 'Claims over HTTP, claim batches and worker streams get nothing for the command until `codeq queues resume`. The pause is stored: it survives restarts and holds on every replica.';
  static override examples = ['<%= config.bin %> queues pause email.send'];
  static override args = { command: Args.string({ description: 'command (queue) name', required: true }) };

  async run(): Promise<{ command: string; paused: boolean }> {
    const r = await createProducer({ transport: this.transport, retry: CLI_RETRY }).admin.pause(this.args.command);
    this.log(`${tag.ok()} Paused: ${r.command}`);
    return r;
  }
}
