import { CodeqError } from '@codeq/proto';
import { createProducer } from '@codeq/sdk-producer';
import { Args } from '@oclif/core';
import { BaseCommand, CLI_RETRY } from '../../base-command.js';
import { tag } from '../../output.js';

export default class SchedulesRm extends BaseCommand<typeof SchedulesRm> {
  static override summary = 'Delete a schedule (admin). Tasks it already created stay.';
  static override description = 'Exits 4 when there is no schedule of that name.';
  static override examples = ['<%= config.bin %> schedules rm nightly-report'];
  static override args = {
    name: Args.string({ description: 'schedule name', required: true }),
  };

  async run(): Promise<{ name: string; deleted: boolean }> {
    const name = this.args.name;
    const deleted = await createProducer({ transport: this.transport, retry: CLI_RETRY }).admin.schedules.remove(name);
    if (!deleted) throw new CodeqError('NOT_FOUND', `schedule not found: ${name}`);
    this.log(`${tag.ok()} Schedule deleted: ${name}`);
    return { name, deleted };
  }
}
