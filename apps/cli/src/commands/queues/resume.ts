import { createProducer } from '@codeq/sdk-producer';
import { Args } from '@oclif/core';
import { BaseCommand, CLI_RETRY } from '../../base-command.js';
import { tag } from '../../output.js';

export default class QueuesResume extends BaseCommand<typeof QueuesResume> {
  static override summary = 'Resume a paused command: claims flow again (admin).';
  static override examples = ['<%= config.bin %> queues resume email.send'];
  static override args = { command: Args.string({ description: 'command (queue) name', required: true }) };

  async run(): Promise<{ command: string; paused: boolean }> {
    const r = await createProducer({ transport: this.transport, retry: CLI_RETRY }).admin.resume(this.args.command);
    this.log(`${tag.ok()} Resumed: ${r.command}`);
    return r;
  }
}
