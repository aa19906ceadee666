/** Runs one shell command per task for `codeq worker start -- <command…>`. */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Task } from '@codeq/sdk-producer';
import { PermanentFailure, type TaskContext } from '@codeq/sdk-worker';

const MAX_STDOUT = 1024 * 1024;
const MAX_STDERR_TAIL = 2000;

/** True when `cmd` can be executed (a path, or a name found on PATH). */
export function findExecutable(cmd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const ok = (p: string): boolean => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (cmd.includes('/')) {
    const p = isAbsolute(cmd) ? cmd : resolve(cmd);
    return ok(p) ? p : undefined;
  }
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir && ok(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

export interface ShellTaskOptions {
  argv: string[];
  /** One argument with spaces runs through `sh -c`. */
  shell: boolean;
  failOnError: boolean;
}

/** stdout as the result: a JSON object as is, anything else as `{ stdout }`. */
export function resultFromStdout(stdout: string): Record<string, unknown> {
  const text = stdout.trim();
  if (text.startsWith('{')) {
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      /* not JSON: fall through */
    }
  }
  return { stdout: stdout.length > MAX_STDOUT ? stdout.slice(0, MAX_STDOUT) : stdout };
}

/**
 * The payload JSON goes to the child's stdin; task details are in CODEQ_TASK_ID, CODEQ_TASK_COMMAND,
 * CODEQ_TASK_ATTEMPT and CODEQ_LEASE_ID. Exit 0 → COMPLETED with stdout as the result; non-zero →
 * nack (retry later), or FAILED with `failOnError`. Losing the lease or a hard stop SIGTERMs the child.
 */
export function runShellTask(task: Task, ctx: TaskContext, o: ShellTaskOptions, stderr: (chunk: Buffer) => void): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    const [cmd, ...args] = o.argv;
    const child = spawn(cmd as string, args, {
      shell: o.shell,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        CODEQ_TASK_ID: task.id,
        CODEQ_TASK_COMMAND: task.command,
        CODEQ_TASK_ATTEMPT: String(task.attempts),
        CODEQ_LEASE_ID: ctx.leaseId,
      },
    });
    let out = '';
    let tail = '';
    child.stdout.on('data', (d: Buffer) => {
      if (out.length < MAX_STDOUT + 1) out += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr(d);
      tail = (tail + d.toString('utf8')).slice(-MAX_STDERR_TAIL);
    });
    child.stdin.on('error', () => undefined); // the command may not read its input
    child.stdin.end(task.payload);
    const onAbort = (): void => {
      child.kill('SIGTERM');
      setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), 2000).unref();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      ctx.signal.removeEventListener('abort', onAbort);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      ctx.signal.removeEventListener('abort', onAbort);
      if (ctx.signal.aborted) return reject(ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('aborted'));
      if (code === 0) return resolvePromise(resultFromStdout(out));
      const lastLine = tail.trim().split('\n').pop()?.trim();
      const why = `${signal ? `command killed by ${signal}` : `command exited with code ${code}`}${lastLine ? `: ${lastLine}` : ''}`;
      reject(o.failOnError ? new PermanentFailure(why) : new Error(why));
    });
  });
}
