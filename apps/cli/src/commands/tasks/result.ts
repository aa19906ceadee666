import { CodeqError } from '@codeq/proto';
import type { ResultRecord } from '@codeq/sdk-producer';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { tag } from '../../output.js';

export default class TasksResult extends BaseCommand<typeof TasksResult> {
  static override tokenRole = 'worker' as const;
  static override summary = 'Record the outcome of a claimed task (worker token).';
  static override description =
    'COMPLETED needs a JSON object (--result, default {}); FAILED needs --error. With --lease-id the call is fenced ' +
    'to that lease and safe to repeat.';
  static override examples = [
    `<%= config.bin %> tasks result 3f0c… --status COMPLETED --result '{"ok":true}' --lease-id 7fcc…`,
    `<%= config.bin %> tasks result 3f0c… --status FAILED --error 'bad input' --lease-id 7fcc…`,
  ];
  static override args = { id: Args.string({ description: 'task id', required: true }) };
  static override flags = {
    status: Flags.string({ char: 's', summary: 'Outcome.', options: ['COMPLETED', 'FAILED'], required: true }),
    result: Flags.string({ char: 'r', summary: 'Result object as JSON (COMPLETED).' }),
    error: Flags.string({ char: 'e', summary: 'Error message (FAILED).' }),
    'lease-id': Flags.string({ summary: 'Lease to fence the call to (from `tasks claim`).' }),
  };

  async run(): Promise<ResultRecord> {
    const status = this.flags.status as 'COMPLETED' | 'FAILED';
    let result: Record<string, unknown> | undefined;
    if (status === 'COMPLETED') {
      const v = this.flags.result === undefined ? {} : this.parseJson('result', this.flags.result);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CodeqError('VALIDATION_FAILED', 'result must be a JSON object');
      result = v as Record<string, unknown>;
    }
    const record = await this.transport.submitResult(this.args.id, {
      status,
      ...(result ? { result } : {}),
      ...(this.flags.error !== undefined ? { error: this.flags.error } : {}),
      ...(this.flags['lease-id'] ? { leaseId: this.flags['lease-id'] } : {}),
    });
    this.log(`${tag.ok()} Result recorded: ${record.taskId} ${record.status}`);
    return record;
  }
}
