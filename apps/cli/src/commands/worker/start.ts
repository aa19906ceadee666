import { CodeqError } from '@codeq/proto';
import { createWorker, type WorkerEvent } from '@codeq/sdk-worker';
import { Flags } from '@oclif/core';
import { BaseCommand, transportFlags } from '../../base-command.js';
import { tag } from '../../output.js';
import { findExecutable, runShellTask } from '../../shell-task.js';

type AckMode = 'complete' | 'nack' | 'abandon' | 'none';

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
    'Prints one line per task on stdout (JSON lines with --json). Without a program, --ack complete|nack|abandon|none ' +
    "runs upstream's loop instead: claim, print, then complete with {\"handledBy\":\"codeq\",\"ts\":…}, nack after --nack-delay, abandon, or nothing.";
  static override examples = [
    '<%= config.bin %> worker start --commands email.send --concurrency 4 -- node send-email.js',
    "<%= config.bin %> worker start --commands resize -- 'jq -c \"{size: .width * .height}\"'",
    '<%= config.bin %> worker start --commands echo --max-tasks 1 --json -- cat',
    '<%= config.bin %> worker start --commands email.send --concurrency 8 --transport grpc --grpc-address localhost:9091 -- node send-email.js',
    '<%= config.bin %> worker start --events PROCESS_ORDER --ack complete',
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
    wait: Flags.integer({ summary: 'Long-poll seconds per claim (max 30).', min: 1, max: 30, default: 30, hidden: true, aliases: ['wait-seconds'] }),
    ack: Flags.string({
      summary: "Without a program: upstream's acknowledgement of each claimed task.",
      options: ['complete', 'nack', 'abandon', 'none'],
    }),
    'nack-delay': Flags.integer({ summary: 'Seconds before the retry with --ack nack.', min: 0, default: 5 }),
    ...transportFlags('worker'),
  };

  /** Each event on one line (JSON lines), the summary included. */
  protected override logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json) + '\n');
  }

  async run(): Promise<Summary> {
    const argv = this.rest;
    if (argv.length > 0 && this.flags.ack) throw new CodeqError('VALIDATION_FAILED', '--ack is for running without a program: drop --ack, or the program after --');
    if (argv.length === 0 && this.flags.ack) return this.ackLoop(this.flags.ack as AckMode);
    if (argv.length === 0) throw new CodeqError('VALIDATION_FAILED', 'no command to run: codeq worker start --commands X -- <command…> (or --ack complete|nack|abandon|none)');
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

  /**
   * Upstream's `worker start --ack` loop, for trying a queue out without writing a worker:
   * `--concurrency` loops of claim (long-poll) → print → acknowledge. Claim failures are reported
   * (at most one line per 3 s) and retried after 1 s; a rejected token ends the command (exit 3).
   */
  private async ackLoop(mode: AckMode): Promise<Summary> {
    const commands = this.flags.commands.split(',').map((c) => c.trim()).filter(Boolean);
    const json = this.jsonEnabled();
    const summary: Summary = { claimed: 0, completed: 0, failed: 0, nacked: 0, abandoned: 0, leaseLost: 0 };
    const transport = this.streamTransport('worker');
    const max = this.flags['max-tasks'];
    const waitSeconds = this.flags.wait;
    const stopper = new AbortController();
    const stop = (): void => {
      if (stopper.signal.aborted) return;
      this.note(`${tag.warn()} Stopping...`);
      stopper.abort();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const say = (event: Record<string, unknown>, line: string): void => (json ? this.logJson(event) : this.log(line));
    let reserved = 0;
    let lastWarn = 0;
    let fatal: Error | undefined;
    const loop = async (): Promise<void> => {
      while (!stopper.signal.aborted && fatal === undefined) {
        if (max !== undefined && reserved >= max) return;
        reserved++;
        let task;
        try {
          task = await transport.claim({ commands, waitSeconds, ...(this.flags.lease ? { leaseSeconds: this.flags.lease } : {}) }, { signal: stopper.signal, timeoutMs: (waitSeconds + 10) * 1000 });
        } catch (e) {
          reserved--;
          if (stopper.signal.aborted) return;
          if (CodeqError.is(e) && (e.code === 'UNAUTHENTICATED' || e.code === 'FORBIDDEN' || e.code === 'VALIDATION_FAILED')) {
            fatal = e;
            return;
          }
          if (Date.now() - lastWarn > 3000) {
            lastWarn = Date.now();
            this.note(`${tag.warn()} Cannot claim: ${e instanceof Error ? e.message : String(e)}`);
          }
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        if (!task) {
          reserved--;
          continue;
        }
        summary.claimed++;
        say({ type: 'claimed', taskId: task.id, command: task.command, attempt: task.attempts }, `${tag.ok()} Task claimed: ${task.id} (${task.command})`);
        const lease = task.leaseId ? { leaseId: task.leaseId } : {};
        try {
          if (mode === 'complete') {
            await transport.submitResult(task.id, { status: 'COMPLETED', result: { handledBy: 'codeq', ts: new Date().toISOString() }, ...lease });
            summary.completed++;
            say({ type: 'completed', taskId: task.id, command: task.command }, `${tag.ok()} Task completed: ${task.id} (${task.command})`);
          } else if (mode === 'nack') {
            const n = await transport.nack(task.id, { delaySeconds: this.flags['nack-delay'], reason: 'codeq', ...lease });
            summary.nacked++;
            say({ type: 'nacked', taskId: task.id, command: task.command, ...n }, `${tag.warn()} Task nacked: ${task.id} (${task.command})`);
          } else if (mode === 'abandon') {
            await transport.abandon(task.id, lease);
            summary.abandoned++;
            say({ type: 'abandoned', taskId: task.id, command: task.command }, `${tag.warn()} Task abandoned: ${task.id} (${task.command})`);
          }
        } catch (e) {
          this.note(`${tag.warn()} Cannot ${mode} task ${task.id}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    };
    this.note(`${tag.info()} Worker connected. Listening... (commands ${commands.join(',')}, ack ${mode}, server ${this.target('worker')})`);
    try {
      await Promise.all(Array.from({ length: this.flags.concurrency }, loop));
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    if (fatal !== undefined) throw fatal;
    this.note(`${tag.info()} Worker stopped: ${summary.claimed} claimed, ${summary.completed} completed, ${summary.nacked} nacked, ${summary.abandoned} abandoned`);
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
