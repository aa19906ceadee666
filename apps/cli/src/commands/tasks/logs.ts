import type { TaskLogLine } from '@codeq/sdk-producer/transport';
import { Args, Flags } from '@oclif/core';
import { CodeqError } from '@codeq/proto';
import { BaseCommand } from '../../base-command.js';

export default class TasksLogs extends BaseCommand<typeof TasksLogs> {
  static override summary = "Show a task's log lines (written by its workers with ctx.log / ctx.logger).";
  static override description =
    'One line each: time, attempt, level, message. The server keeps the last 200 lines of a task; lines longer than 2 KiB end with "…[truncated]". ' +
    'With --follow, new lines are printed as they arrive until the task ends.';
  static override examples = [
    '<%= config.bin %> tasks logs 3f0c…',
    '<%= config.bin %> tasks logs 3f0c… --follow',
    '<%= config.bin %> tasks logs 3f0c… --json | jq -r ".[].message"',
  ];
  static override args = { id: Args.string({ description: 'task id', required: true }) };
  static override flags = {
    after: Flags.integer({ summary: 'Only lines numbered after this one.', min: 0 }),
    follow: Flags.boolean({ char: 'f', summary: 'Keep printing new lines until the task has finished.', default: false }),
  };

  async run(): Promise<TaskLogLine[]> {
    const t = this.transport;
    if (!t.getLogs) throw new CodeqError('VALIDATION_FAILED', 'this transport cannot read task logs');
    const all: TaskLogLine[] = [];
    let after = this.flags.after ?? 0;
    for (;;) {
      const lines = await this.retried(() => t.getLogs!(this.args.id, { after }));
      for (const l of lines) this.log(`${l.at}  #${l.attempt}  ${l.level.toUpperCase().padEnd(5)}  ${l.message}`);
      all.push(...lines);
      if (lines.length) after = lines[lines.length - 1]!.n;
      if (lines.length === 200) continue; // a full page: read on at once
      if (!this.flags.follow) break;
      const task = await this.retried(() => t.getTask(this.args.id));
      if (task.status !== 'PENDING' && task.status !== 'IN_PROGRESS') {
        // One last read: lines written just before the outcome.
        const last = await this.retried(() => t.getLogs!(this.args.id, { after }));
        for (const l of last) this.log(`${l.at}  #${l.attempt}  ${l.level.toUpperCase().padEnd(5)}  ${l.message}`);
        all.push(...last);
        break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    return all;
  }
}
