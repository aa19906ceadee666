import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { serverTask } from '../../output.js';

/**
 * Upstream's `codeq task get <id>`: `GET /v1/codeq/tasks/<id>` printed as the server's JSON (scripts
 * parse it). Hidden: `tasks get` is the documented way (a readable block, JSON with --json).
 */
export default class TaskGetCommand extends BaseCommand<typeof TaskGetCommand> {
  static override hidden = true;
  static override summary = "Print a task as the server's JSON (upstream's `task get`; see `tasks get`).";
  static override examples = ['<%= config.bin %> task get 3f0c6d2e-… | jq -r .status'];
  static override args = { id: Args.string({ description: 'task id', required: true }) };

  async run(): Promise<Record<string, unknown>> {
    const task = serverTask(await this.retried(() => this.transport.getTask(this.args.id)));
    if (!this.jsonEnabled()) this.log(JSON.stringify(task, null, 2));
    return task;
  }
}
