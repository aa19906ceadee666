import { randomUUID } from 'node:crypto';
import { fstatSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { CodeqError } from '@codeq/proto';
import type { Task } from '@codeq/sdk-producer';
import { Args, Flags } from '@oclif/core';
import { BaseCommand, transportFlags } from '../../base-command.js';
import { tag } from '../../output.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** How long an implicit payload on standard input may take to start before `{}` is used. */
const STDIN_IDLE_MS = 1500;

/**
 * The payload from standard input when no --payload / --payload-file was given (`null`: none).
 * - A terminal: none.
 * - A shell pipe (FIFO), a file or /dev/null: read to the end, however long the writer takes
 *   (`slow_cmd | codeq tasks submit X` must never submit `{}` in place of the real payload).
 * - A socket, which is what a program's `spawn`/`execFile` gives its child and often never closes:
 *   after STDIN_IDLE_MS without a first byte it counts as none, instead of hanging the command.
 *   Once data starts, everything up to the end is read.
 */
function readImplicitStdin(): Promise<string | null> {
  if (process.stdin.isTTY) return Promise.resolve(null);
  let socket = false;
  try {
    socket = fstatSync(0).isSocket();
  } catch {
    /* no standard input at all */
    return Promise.resolve(null);
  }
  if (!socket) return readStdin();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const stdin = process.stdin;
    const finish = (v: string | null): void => {
      clearTimeout(timer);
      stdin.off('data', onData).off('end', onEnd).off('error', onError);
      if (v === null) stdin.pause();
      resolve(v);
    };
    const onData = (c: Buffer): void => {
      clearTimeout(timer);
      chunks.push(c);
    };
    const onEnd = (): void => finish(Buffer.concat(chunks).toString('utf8'));
    const onError = (e: Error): void => {
      clearTimeout(timer);
      reject(e);
    };
    const timer = setTimeout(() => {
      if (chunks.length === 0) finish(null);
    }, STDIN_IDLE_MS);
    stdin.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

export default class TasksSubmit extends BaseCommand<typeof TasksSubmit> {
  static override summary = 'Create a task.';
  static override description =
    'The payload is any JSON value, from --payload, --payload-file (- for stdin) or standard input (default {}). ' +
    'Transient failures are retried with one idempotency key, so a retry never creates a second task. ' +
    'Prints `[OK] Task created: <id>` (the id is the last word), or the task with --json. ' +
    'With --transport grpc the task goes over the producer stream (the --json task is the stored task from the ack; an upstream server acks only the id, and then it shows the submitted values).';
  static override aliases = ['task:create'];
  static override examples = [
    `<%= config.bin %> tasks submit email.send --payload '{"to":"a@example.com"}' --priority 5`,
    `echo '{"orderId":42}' | <%= config.bin %> tasks submit PROCESS_ORDER --idempotency-key order-42`,
    `<%= config.bin %> tasks submit report.build --payload-file job.json --delay 60 --json | jq -r .id`,
    `<%= config.bin %> tasks submit email.send --payload '{"to":"a@example.com"}' --transport grpc --grpc-address localhost:9092`,
  ];
  static override streamRole = 'producer' as const;
  static override args = {
    command: Args.string({ description: 'command (queue) name', required: false }),
  };
  static override flags = {
    payload: Flags.string({ char: 'p', summary: 'Payload as JSON.', exclusive: ['payload-file'] }),
    'payload-file': Flags.string({ char: 'f', summary: 'Read the JSON payload from a file (- for stdin).' }),
    priority: Flags.integer({ summary: 'Priority 0-9 (higher first).', min: 0, max: 9 }),
    delay: Flags.integer({ summary: 'Seconds before the task becomes visible.', min: 0, aliases: ['delay-seconds'] }),
    'run-at': Flags.string({ summary: 'RFC 3339 instant at which the task becomes visible.' }),
    'idempotency-key': Flags.string({ summary: 'Deduplication key (default: a random UUID per invocation).' }),
    'max-attempts': Flags.integer({ summary: 'Deliveries before dead-lettering (0 or unset: the server default, 5).', min: 0 }),
    webhook: Flags.string({ summary: 'URL that receives the result callback.' }),
    event: Flags.string({ hidden: true, summary: 'Command name (upstream `task create --event`).' }),
    ...transportFlags('producer'),
  };

  async run(): Promise<Task> {
    const command = this.args.command ?? this.flags.event;
    if (!command) throw new CodeqError('VALIDATION_FAILED', 'command is required: codeq tasks submit <command>');
    let text: string;
    if (this.flags.payload !== undefined) text = this.flags.payload;
    else if (this.flags['payload-file'] !== undefined) text = this.flags['payload-file'] === '-' ? await readStdin() : await readFile(this.flags['payload-file'], 'utf8');
    else {
      const piped = await readImplicitStdin();
      if (piped === null && !process.stdin.isTTY) this.note(`${tag.warn()} No payload on standard input after ${STDIN_IDLE_MS / 1000} s: submitting {} (use --payload, --payload-file or pipe the payload and close the input)`);
      text = piped ?? '';
    }
    const payload = text.trim() === '' ? {} : this.parseJson('payload', text);
    const input = {
      command,
      payload,
      idempotencyKey: this.flags['idempotency-key'] ?? randomUUID(),
      ...(this.flags.priority !== undefined ? { priority: this.flags.priority } : {}),
      ...(this.flags.delay !== undefined ? { delaySeconds: this.flags.delay } : {}),
      ...(this.flags['run-at'] !== undefined ? { runAt: this.flags['run-at'] } : {}),
      // 0 means "not set", as in upstream's `task create --max-attempts 0`.
      ...(this.flags['max-attempts'] ? { maxAttempts: this.flags['max-attempts'] } : {}),
      ...(this.flags.webhook !== undefined ? { webhook: this.flags.webhook } : {}),
    };
    const transport = this.streamTransport('producer');
    const task = await this.retried(() => transport.createTask(input));
    this.log(`${tag.ok()} Task created: ${task.id}`);
    return task;
  }
}
