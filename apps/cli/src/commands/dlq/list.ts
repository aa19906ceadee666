import { createProducer, type TaskPage } from '@codeq/sdk-producer';
import { Flags } from '@oclif/core';
import { BaseCommand, CLI_RETRY } from '../../base-command.js';
import { taskRows } from '../../output.js';

export default class DlqList extends BaseCommand<typeof DlqList> {
  static override summary = 'List dead-lettered tasks with their last error, newest first (admin).';
  static override description = 'One page (--limit, default 50); the cursor of the next page is printed on stderr. --json prints {"tasks":[…],"nextCursor":…}.';
  static override examples = ['<%= config.bin %> dlq list', '<%= config.bin %> dlq list --command email.send --limit 100 --json | jq -r ".tasks[].id"'];
  static override flags = {
    command: Flags.string({ char: 'c', summary: 'Only this command.' }),
    limit: Flags.integer({ char: 'n', summary: 'Page size (1..500).', min: 1, max: 500, default: 50 }),
    cursor: Flags.string({ summary: 'Start after this cursor (printed by the previous page).' }),
  };

  async run(): Promise<TaskPage> {
    const f = this.flags;
    const page = await createProducer({ transport: this.transport, retry: CLI_RETRY }).admin.dlq.list({
      limit: f.limit,
      ...(f.command ? { command: f.command } : {}),
      ...(f.cursor ? { cursor: f.cursor } : {}),
    });
    if (page.tasks.length === 0) this.note('No dead-lettered tasks');
    else this.log(taskRows(page.tasks));
    if (page.nextCursor) this.note(`More: --cursor ${page.nextCursor}`);
    return page;
  }
}
