import { createProducer, type Schedule } from '@codeq/sdk-producer';
import { BaseCommand, CLI_RETRY } from '../../base-command.js';
import { table } from '../../output.js';

export default class SchedulesList extends BaseCommand<typeof SchedulesList> {
  static override summary = "List the schedules of the token's tenant (admin).";
  static override description = 'One row per schedule: NAME, COMMAND, WHEN (cron and zone, or every N s), NEXT RUN, LAST RUN, LAST TASK. --json prints {"schedules":[…]}.';
  static override examples = ['<%= config.bin %> schedules list', '<%= config.bin %> schedules list --json | jq ".schedules[] | select(.lastError)"'];

  async run(): Promise<{ schedules: Schedule[] }> {
    const schedules = await createProducer({ transport: this.transport, retry: CLI_RETRY }).admin.schedules.list();
    if (schedules.length === 0) this.note('No schedules');
    else
      this.log(
        table(
          ['NAME', 'COMMAND', 'WHEN', 'NEXT RUN', 'LAST RUN', 'LAST TASK'],
          schedules.map((s) => [
            s.name,
            s.command,
            s.cron !== null ? `${s.cron} (${s.timezone})` : `every ${s.everySeconds} s`,
            s.paused ? 'paused' : (s.nextRunAt ?? '-'),
            s.lastRunAt ?? '-',
            s.lastTaskId ?? '-',
          ]),
        ),
      );
    return { schedules };
  }
}
