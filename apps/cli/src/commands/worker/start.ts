import { CodeqError } from '@codeq/proto';
import { createWorker, type WorkerEvent } from '@codeq/sdk-worker';
import { Flags } from '@oclif/core';
import { BaseCommand, transportFlags } from '../../base-command.js';
import { tag } from '../../output.js';
import { findExecutable, runShellTask } from '../../shell-task.js';

interface Summary {
  claimed: number;
  completed: number;
  failed: number;
  nacked: number;
  abandoned: number;
  leaseLost: number;
}

export default class WorkerStart extends BaseCommand<typeof WorkerStart> {
  static override tokenRole = 'worker' as const;
  static override summary = 'Run a worker that pipes each task into a shell command.';
  static override description =
    'For every claimed task, runs <command…> (everything after --) with the payload JSON on stdin and CODEQ_TASK_ID, ' +
    'CODEQ_TASK_COMMAND, CODEQ_TASK_ATTEMPT, CODEQ_LEASE_ID in the environment. Exit 0 records COMPLETED with stdout ' +
    'as the result (a JSON object as is, otherwise {"stdout": "…"}); a non-zero exit nacks the task (retried after ' +
    "the server's backoff), or records FAILED with --fail-on-error. Leases are renewed while the command runs. " +
    'SIGINT/SIGTERM stop claiming and wait up to --drain-timeout for running commands (a second signal stops at once). ' +
    'With --transport grpc the worker uses the worker stream (tasks are pushed as slots free up) instead of HTTP long-polls. ' +
    'Prints one line per task on stdout (JSON lines with --json).';
  static override examples = [
    '<%= config.bin %> worker start --commands email.send --concurrency 4 -- node send-email.js',
    "<%= config.bin %> worker start --commands resize -- 'jq -c \"{size: .width * .height}\"'",
    '<%= config.bin %> worker start --commands echo --max-tasks 1 --json -- cat',
    '<%= config.bin %> worker start --commands email.send --concurrency 8 --transport grpc --grpc-address localhost:9091 -- node send-email.js',
  ];
  static override streamRole = 'worker' as const;
  static override strict = false;
  static override flags = {
    commands: Flags.string({ char: 'c', summary: 'Comma-separated commands to claim, in priority order.', required: true, aliases: ['events'] }),
    concurrency: Flags.integer({ char: 'n', summary: 'Tasks run at once.', min: 1, default: 1 }),
    lease: Flags.integer({ summary: 'Lease seconds (renewed at 1/3 while the command runs; server default 300).', min: 1, aliases: ['lease-seconds'] }),
    'fail-on-error': Flags.boolean({ summary: 'A non-zero exit records FAILED instead of retrying.', default: false }),
    'drain-timeout': Flags.integer({ summary: 'Seconds to wait for running commands on shutdown.', min: 0, default: 30 }),
    'max-tasks': Flags.integer({ summary: 'Stop after claiming this many tasks (then drain).', min: 1 }),
    wait: Flags.integer({ summary: 'Long-poll seconds per claim (max 30).', min: 1, max: 30, default: 30, hidden: true }),
    ...transportFlags('worker'),
  };

  /** Each event on one line (JSON lines), the summary included. */
  protected override logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json) + '\n');
  }

  async run(): Promise<Summary> {
    const argv = this.rest;
    if (argv.length === 0) throw new CodeqError('VALIDATION_FAILED', 'no command to run: codeq worker start --commands X -- <command…>');
    const shell = argv.length === 1 && /\s/.test(argv[0] ?? '');
    if (!shell && !findExecutable(argv[0] ?? '')) throw new CodeqError('VALIDATION_FAILED', `command not found: ${argv[0]}`);
    const commands = this.flags.commands.split(',').map((c) => c.trim()).filter(Boolean);
    const json = this.jsonEnabled();
    const summary: Summary = { claimed: 0, completed: 0, failed: 0, nacked: 0, abandoned: 0, leaseLost: 0 };
    const transport = this.streamTransport('worker');
    const drainMs = this.flags['drain-timeout'] * 1000;

    const worker = createWorker({
      transport,
      commands,
      concurrency: this.flags.concurrency,
      waitSeconds: this.flags.wait,
      drainTimeoutMs: drainMs,
      handleSignals: true,
      ...(this.flags.lease ? { leaseSeconds: this.flags.lease } : {}),
      handler: (task, ctx) => runShellTask(task, ctx, { argv, shell, failOnError: this.flags['fail-on-error'] }, (d) => process.stderr.write(d)),
      onEvent: (e) => {
        this.count(summary, e);
        if (json) {
          if (e.type !== 'stopped') this.logJson(e.type === 'error' ? { ...e, error: { message: e.error.message, code: CodeqError.is(e.error) ? e.error.code : undefined } } : e);
        } else this.print(e);
        if (e.type === 'claimed' && this.flags['max-tasks'] !== undefined && summary.claimed >= this.flags['max-tasks']) void worker.stop({ deadlineMs: drainMs });
      },
    });
    this.note(`${tag.info()} Worker started: commands ${commands.join(',')}, concurrency ${this.flags.concurrency}, server ${this.target('worker')}. Listening...`);
    worker.start();
    await worker.done;
    this.note(`${tag.info()} Worker stopped: ${summary.completed} completed, ${summary.failed} failed, ${summary.nacked} nacked, ${summary.abandoned} abandoned, ${summary.leaseLost} lease lost`);
    return summary;
  }

  private count(s: Summary, e: WorkerEvent): void {
    if (e.type === 'claimed') s.claimed++;
    else if (e.type === 'completed') s.completed++;
    else if (e.type === 'failed') s.failed++;
    else if (e.type === 'nacked') s.nacked++;
    else if (e.type === 'abandoned') s.abandoned++;
    else if (e.type === 'lease-lost') s.leaseLost++;
  }

  private print(e: WorkerEvent): void {
    switch (e.type) {
      case 'claimed':
        return this.log(`${tag.info()} Task claimed: ${e.taskId} (${e.command}, attempt ${e.attempt})`);
      case 'completed':
        return this.log(`${tag.ok()} Task completed: ${e.taskId} (${e.command}) in ${e.durationMs} ms`);
      case 'failed':
        return this.log(`${tag.error()} Task failed: ${e.taskId} (${e.command}): ${e.error}`);
      case 'nacked':
        return this.log(`${tag.warn()} Task nacked: ${e.taskId} (${e.command}): ${e.reason} (${e.status === 'dlq' ? 'dead-lettered' : `retry in ${e.delaySeconds}s`})`);
      case 'abandoned':
        return this.log(`${tag.warn()} Task abandoned: ${e.taskId} (${e.command}): ${e.reason}`);
      case 'lease-lost':
        return this.log(`${tag.warn()} Lease lost: ${e.taskId} (${e.command}): ${e.reason}`);
      case 'cancelled':
        return this.log(`${tag.warn()} Task cancelled: ${e.taskId} (${e.command}) after ${e.durationMs} ms`);
      case 'handler-timeout':
        return this.log(`${tag.warn()} Handler timed out: ${e.taskId} (${e.command}) after ${e.timeoutMs} ms`);
      case 'result-gave-up':
        return this.note(`${tag.error()} Gave up recording the outcome of ${e.taskId} (${e.command}) after ${e.attempts} attempts: ${e.error}; it is redelivered when its lease expires`);
      case 'error':
        if (e.phase === 'fatal') return; // reported as the command's error
        return this.note(`${tag.warn()} ${e.phase === 'claim' ? 'Cannot claim: ' : ''}${e.error.message}${e.taskId ? ` (task ${e.taskId})` : ''}`);
      case 'reconnected':
        return this.note(`${tag.info()} Reconnected after ${(e.downtimeMs / 1000).toFixed(1)}s`);
      case 'stopped':
        return;
    }
  }
}
