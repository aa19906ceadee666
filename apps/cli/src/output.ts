/** Small formatting helpers for human-readable output (tables and key/value blocks). */
import type { Task } from '@codeq/sdk-producer';

type Stream = { isTTY?: boolean };

const color = (code: number) => (s: string, stream: Stream = process.stdout): string =>
  stream.isTTY && !process.env['NO_COLOR'] ? `\u001b[${code}m${s}\u001b[0m` : s;

/** Upstream's tags: green `[OK]`, cyan `[INFO]`, yellow `[WARN]`, red `[ERROR]` (coloured when `stream`, default stdout, is a terminal). */
export const tag = {
  ok: (stream?: Stream): string => color(32)('[OK]', stream),
  info: (stream?: Stream): string => color(36)('[INFO]', stream),
  warn: (stream?: Stream): string => color(33)('[WARN]', stream),
  error: (stream?: Stream): string => color(31)('[ERROR]', stream),
};

/** Aligned `key  value` lines; undefined values are skipped. */
export function keyValues(rows: Array<[string, unknown]>): string {
  const shown = rows.filter(([, v]) => v !== undefined && v !== '');
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${k.padEnd(width)}  ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('\n');
}

/** A plain text table with a header row. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** The fields of a task worth reading in a terminal. */
export function taskBlock(t: Task): string {
  return keyValues([
    ['id', t.id],
    ['command', t.command],
    ['status', t.status],
    ['location', t.lastKnownLocation],
    ['priority', t.priority],
    ['attempts', `${t.attempts}/${t.maxAttempts}`],
    ['progress', typeof t.progress === 'number' ? `${t.progress}` : t.progress],
    ['payload', t.payload],
    ['leaseId', t.leaseId],
    ['leaseUntil', t.leaseUntil],
    ['workerId', t.workerId],
    ['error', t.error],
    ['webhook', t.webhook],
    ['tenantId', t.tenantId],
    ['createdAt', t.createdAt],
    ['updatedAt', t.updatedAt],
  ]);
}

/** Listing status: a scheduled PENDING task shows as DELAYED; a cancel request is marked. */
export function listStatus(t: Task): string {
  if (t.status === 'PENDING' && t.lastKnownLocation === 'DELAYED_ZSET') return 'DELAYED';
  if (t.status === 'FAILED' && t.lastKnownLocation === 'DLQ_SET') return 'FAILED (DLQ)';
  if (t.cancelRequested && t.status === 'IN_PROGRESS') return 'IN_PROGRESS (cancel requested)';
  return t.status;
}

/** One line per task of an operator listing. Long errors are cut to keep one line per task. */
export function taskRows(tasks: readonly Task[]): string {
  const cut = (s: string | undefined, n: number) => (!s ? '' : s.length > n ? `${s.slice(0, n - 1)}…` : s).replace(/\s+/g, ' ');
  return table(
    ['ID', 'COMMAND', 'STATUS', 'ATTEMPTS', 'CREATED', 'LAST ERROR'],
    tasks.map((t) => [t.id, t.command, listStatus(t), `${t.attempts}/${t.maxAttempts}`, t.createdAt, cut(t.lastError ?? t.error, 60)]),
  );
}

/** The task as the server sent it: without the SDK's conveniences `data` and `payloadJson` (upstream's `task get` prints the raw body). */
export function serverTask(t: Task): Record<string, unknown> {
  const { data: _data, payloadJson: _payloadJson, ...rest } = t as Task & Record<string, unknown>;
  return rest;
}
