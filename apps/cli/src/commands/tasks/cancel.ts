import type { Task } from '@codeq/sdk-producer';
import { createProducer } from '@codeq/sdk-producer';
import { Args } from '@oclif/core';
import { BaseCommand, CLI_RETRY } from '../../base-command.js';
import { tag } from '../../output.js';

export default class TasksCancel extends BaseCommand<typeof TasksCancel> {
  static override summary = 'Cancel a task.';
  static override description =
    'A PENDING or DELAYED task becomes CANCELLED at once (never delivered). An IN_PROGRESS task is marked cancel-requested: its worker is told at its next heartbeat or result and the task ends CANCELLED. ' +
    'Cancelling a CANCELLED task is fine; a COMPLETED or FAILED one exits 5 (TASK_FINISHED).';
  static override examples = ['<%= config.bin %> tasks cancel 3f0c6d2e-…', '<%= config.bin %> tasks cancel 3f0c6d2e-… --json | jq .status'];
  static override args = { id: Args.string({ description: 'task id', required: true }) };

  async run(): Promise<Task> {
    const producer = createProducer({ transport: this.transport, retry: CLI_RETRY });
    const t = await producer.cancel(this.args.id);
    if (t.status === 'CANCELLED') this.log(`${tag.ok()} Task cancelled: ${t.id}`);
    else this.log(`${tag.ok()} Cancel requested: ${t.id} (${t.status}; the worker stops at its next heartbeat)`);
    return t;
  }
}
