import { readFile } from 'node:fs/promises';
import { CodeqError } from '@codeq/proto';
import { createProducer, type Schedule, type ScheduleInput } from '@codeq/sdk-producer';
import { Args, Flags } from '@oclif/core';
import { BaseCommand, CLI_RETRY } from '../../base-command.js';
import { tag } from '../../output.js';

export default class SchedulesAdd extends BaseCommand<typeof SchedulesAdd> {
  static override summary = 'Create or replace a schedule that creates tasks on a cron expression or a fixed interval (admin).';
  static override description =
    'Exactly one of --cron (5 fields, or 6 with seconds first, evaluated in --timezone) and --every (seconds, at least 1). ' +
    'The payload is any JSON value from --payload or --payload-file (default {}). Adding a schedule that exists replaces it; ' +
    'the same timing keeps its next run. Prints `[OK] Schedule saved: <name>` and the next run, or the schedule with --json.';
  static override examples = [
    `<%= config.bin %> schedules add nightly-report --command report.build --cron "0 2 * * *" --timezone Europe/Paris --overlap skip`,
    `<%= config.bin %> schedules add heartbeat --command ping --every 30 --payload '{"source":"cron"}'`,
    `<%= config.bin %> schedules add backfill --command sync --cron "*/15 * * * *" --missed skip --jitter 20 --json`,
  ];
  static override args = {
    name: Args.string({ description: 'schedule name (letters, digits, . _ : -)', required: true }),
  };
  static override flags = {
    command: Flags.string({ char: 'c', summary: 'Command of the tasks it creates.', required: true }),
    cron: Flags.string({ summary: 'Cron expression.', exclusive: ['every'] }),
    every: Flags.integer({ summary: 'Fixed interval in seconds.', min: 1, exclusive: ['cron'] }),
    timezone: Flags.string({ char: 'z', summary: 'IANA time zone of the cron expression (default UTC).' }),
    payload: Flags.string({ char: 'p', summary: 'Payload as JSON.', exclusive: ['payload-file'] }),
    'payload-file': Flags.string({ char: 'f', summary: 'Read the JSON payload from a file.' }),
    overlap: Flags.string({ summary: 'skip: no new task while the previous one is unfinished (default allow).', options: ['skip', 'allow'] }),
    missed: Flags.string({ summary: 'Slots missed while the server was down: fire_once (default) or skip.', options: ['fire_once', 'skip'] }),
    jitter: Flags.integer({ summary: 'Delay each task by 0..N seconds.', min: 0 }),
    priority: Flags.integer({ summary: 'Priority 0-9 of the tasks.', min: 0, max: 9 }),
    'max-attempts': Flags.integer({ summary: 'Deliveries before dead-lettering (server default).', min: 1 }),
    webhook: Flags.string({ summary: 'URL that receives each task’s result callback.' }),
    paused: Flags.boolean({ summary: 'Store it paused (no task until added again without --paused).' }),
  };

  async run(): Promise<Schedule> {
    const f = this.flags;
    if (f.cron === undefined && f.every === undefined) throw new CodeqError('VALIDATION_FAILED', 'give --cron "<expression>" or --every <seconds>');
    let payload: unknown = {};
    if (f.payload !== undefined) payload = this.parseJson('payload', f.payload);
    else if (f['payload-file'] !== undefined) payload = this.parseJson('payload', await readFile(f['payload-file'], 'utf8'));
    const input: ScheduleInput = {
      name: this.args.name,
      command: f.command,
      payload,
      ...(f.cron !== undefined ? { cron: f.cron } : {}),
      ...(f.every !== undefined ? { everySeconds: f.every } : {}),
      ...(f.timezone !== undefined ? { timezone: f.timezone } : {}),
      ...(f.overlap !== undefined ? { overlap: f.overlap as 'skip' | 'allow' } : {}),
      ...(f.missed !== undefined ? { missed: f.missed as 'fire_once' | 'skip' } : {}),
      ...(f.jitter !== undefined ? { jitterSeconds: f.jitter } : {}),
      ...(f.priority !== undefined ? { priority: f.priority } : {}),
      ...(f['max-attempts'] !== undefined ? { maxAttempts: f['max-attempts'] } : {}),
      ...(f.webhook !== undefined ? { webhook: f.webhook } : {}),
      ...(f.paused ? { paused: true } : {}),
    };
    // An upsert is idempotent: retrying it after a lost answer stores the same schedule.
    const s = await createProducer({ transport: this.transport, retry: CLI_RETRY }).admin.schedules.upsert(input);
    this.log(`${tag.ok()} Schedule saved: ${s.name}`);
    this.log(s.nextRunAt ? `Next run: ${s.nextRunAt}` : 'Paused');
    return s;
  }
}
