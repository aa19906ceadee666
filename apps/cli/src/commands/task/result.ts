import type { TaskResult } from '@codeq/sdk-producer';
import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { serverTask } from '../../output.js';

/**
 * Upstream's `codeq task result <id>`: one `GET /v1/codeq/tasks/<id>/result`, no waiting, the
 * answer printed as JSON (`{"result","task"}`). Not found — no such task, or no result yet — exits 4.
 * Hidden: `tasks wait` is the documented way (it long-polls); `tasks result` records a result.
 */
export default class TaskResultCommand extends BaseCommand<typeof TaskResultCommand> {
  static override hidden = true;
  static override summary = "Print a task's result as JSON, without waiting (upstream's `task result`; see `tasks wait`).";
  static override examples = ['<%= config.bin %> task result 3f0c6d2e-…'];
  static override args = { id: Args.string({ description: 'task id', required: true }) };

  async run(): Promise<Record<string, unknown>> {
    const got: TaskResult = await this.retried(() => this.transport.getResult(this.args.id, 0));
    const r = { result: got.result, task: serverTask(got.task) };
    if (!this.jsonEnabled()) this.log(JSON.stringify(r, null, 2));
    return r;
  }
}
