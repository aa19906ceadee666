import { BaseCommand } from '../../base-command.js';
import { table } from '../../output.js';

export default class QueuesList extends BaseCommand<typeof QueuesList> {
  static override summary = "List the queue index counts of the token's tenant (admin).";
  static override description = 'One row per non-empty bucket `codeq:q:<command>:<tenant>:<kind>` (kind: pending:<priority>, delayed, inprog, dlq).';
  static override examples = ['<%= config.bin %> queues list', '<%= config.bin %> queues list --json'];

  async run(): Promise<Record<string, number>> {
    const q = await this.retried(() => this.transport.listQueues());
    const rows = Object.entries(q).sort(([a], [b]) => a.localeCompare(b));
    if (rows.length === 0) this.note('No queued tasks');
    else this.log(table(['QUEUE', 'COUNT'], rows.map(([k, v]) => [k, v])));
    return q;
  }
}
