import { createProducer, type ListFilter, type ListStatus, type Task, type TaskPage } from '@codeq/sdk-producer';
import { CodeqError } from '@codeq/proto';
import { Flags } from '@oclif/core';
import { BaseCommand, CLI_RETRY } from '../../base-command.js';
import { taskRows } from '../../output.js';

const STATUSES: ListStatus[] = ['PENDING', 'DELAYED', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'];

export default class TasksList extends BaseCommand<typeof TasksList> {
  static override summary = "List and search the tenant's tasks, newest first.";
  static override description =
    'One page (--limit, default 50) or every page (--all). Filters: --command, --status (comma-separated: PENDING, DELAYED, IN_PROGRESS, COMPLETED, FAILED, CANCELLED), --dlq, --created-after/--created-before (RFC 3339). ' +
    'Without --all, the cursor of the next page is printed on stderr (pass it to --cursor). --json prints {"tasks":[…],"nextCursor":…}.';
  static override examples = [
    '<%= config.bin %> tasks list',
    '<%= config.bin %> tasks list --command email.send --status FAILED,CANCELLED --limit 20',
    '<%= config.bin %> tasks list --status DELAYED --all --json | jq -r ".tasks[].id"',
  ];
  static override flags = {
    command: Flags.string({ char: 'c', summary: 'Only this command.' }),
    status: Flags.string({ char: 's', summary: `Comma-separated statuses (${STATUSES.join(', ')}).` }),
    dlq: Flags.boolean({ summary: 'Only dead-lettered tasks.' }),
    'created-after': Flags.string({ summary: 'Tasks created at or after this RFC 3339 instant.' }),
    'created-before': Flags.string({ summary: 'Tasks created before this RFC 3339 instant.' }),
    limit: Flags.integer({ char: 'n', summary: 'Page size (1..500).', min: 1, max: 500, default: 50 }),
    cursor: Flags.string({ summary: 'Start after this cursor (printed by the previous page).' }),
    all: Flags.boolean({ char: 'a', summary: 'Follow every page.' }),
  };

  async run(): Promise<TaskPage> {
    const f = this.flags;
    const status = f.status?.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
    const bad = status?.find((s) => !(STATUSES as string[]).includes(s));
    if (bad) throw new CodeqError('VALIDATION_FAILED', `invalid status ${JSON.stringify(bad)} (any of ${STATUSES.join(', ')})`);
    const filter: ListFilter = {
      limit: f.limit,
      ...(f.command ? { command: f.command } : {}),
      ...(status?.length ? { status: status as ListStatus[] } : {}),
      ...(f.dlq ? { dlq: true } : {}),
      ...(f['created-after'] ? { createdAfter: f['created-after'] } : {}),
      ...(f['created-before'] ? { createdBefore: f['created-before'] } : {}),
      ...(f.cursor ? { cursor: f.cursor } : {}),
    };
    const producer = createProducer({ transport: this.transport, retry: CLI_RETRY });
    let page: TaskPage;
    if (f.all) {
      const tasks: Task[] = [];
      for await (const t of producer.list(filter)) tasks.push(t);
      page = { tasks, nextCursor: null };
    } else page = await producer.listPage(filter);
    if (page.tasks.length === 0) this.note('No tasks');
    else this.log(taskRows(page.tasks));
    if (page.nextCursor) this.note(`More: --cursor ${page.nextCursor}`);
    return page;
  }
}
