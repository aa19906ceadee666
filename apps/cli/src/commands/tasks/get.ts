import type { Task } from '@codeq/sdk-producer';
import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { taskBlock } from '../../output.js';

export default class TasksGet extends BaseCommand<typeof TasksGet> {
  static override summary = 'Show a task.';
  static override examples = ['<%= config.bin %> tasks get 3f0c6d2e-…', '<%= config.bin %> tasks get 3f0c6d2e-… --json | jq -r .status'];
  static override args = { id: Args.string({ description: 'task id', required: true }) };

  async run(): Promise<Task> {
    const task = await this.retried(() => this.transport.getTask(this.args.id));
    this.log(taskBlock(task));
    return task;
  }
}
