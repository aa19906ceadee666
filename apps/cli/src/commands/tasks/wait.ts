import { createProducer, type TaskResult } from '@codeq/sdk-producer';
import { Args, Flags } from '@oclif/core';
import { BaseCommand, CLI_RETRY, EXIT_TASK_CANCELLED, EXIT_TASK_FAILED } from '../../base-command.js';
import { keyValues, tag } from '../../output.js';

export default class TasksWait extends BaseCommand<typeof TasksWait> {
  static override summary = "Wait for a task's result.";
  static override description =
    'Long-polls until the task is COMPLETED, FAILED (including dead-lettered) or CANCELLED and prints the result. ' +
    `Exits 0 when it COMPLETED, ${EXIT_TASK_FAILED} when it ended FAILED, ${EXIT_TASK_CANCELLED} when it was CANCELLED, and 4 (not found) if there is no result before --timeout.`;
  static override examples = [
    '<%= config.bin %> tasks wait 3f0c… --timeout 120',
    '<%= config.bin %> tasks wait 3f0c… --json | jq .result.result',
    '<%= config.bin %> tasks wait 3f0c… || echo "failed or timed out: exit $?"',
  ];
  static override args = { id: Args.string({ description: 'task id', required: true }) };
  static override flags = {
    timeout: Flags.integer({ char: 't', summary: 'Seconds to wait.', min: 0, default: 60 }),
  };

  async run(): Promise<TaskResult> {
    const producer = createProducer({ transport: this.transport, retry: CLI_RETRY });
    const r = await producer.waitForResult(this.args.id, { timeoutMs: this.flags.timeout * 1000 });
    this.log(
      keyValues([
        ['id', r.task.id],
        ['status', r.result.status],
        ['result', r.result.result],
        ['error', r.result.error],
        ['completedAt', r.result.completedAt],
      ]),
    );
    if (r.result.status === 'FAILED') {
      // The result is still printed (and returned for --json); the exit code tells scripts.
      this.note(`${tag.error()} Task ${r.task.id} ended FAILED${r.result.error ? `: ${r.result.error}` : ''}`);
      process.exitCode = EXIT_TASK_FAILED;
    } else if (r.result.status === 'CANCELLED') {
      this.note(`${tag.warn()} Task ${r.task.id} was CANCELLED`);
      process.exitCode = EXIT_TASK_CANCELLED;
    }
    return r;
  }
}
