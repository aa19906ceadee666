/**
 * Task notes written by the lease holder while it works (issue 17 item 3): the latest progress
 * value and a bounded log. Plain TypeScript: limits, request parsing and the JSON shapes.
 */
import { CodeqError } from '@codeq/proto/errors';
import { jsonTooDeep, depthError } from './input-guards.js';
import { formatTime } from './time.js';

/** Largest progress value, as JSON text (bytes of UTF-8). */
export const MAX_PROGRESS_BYTES = 4096;
/** Lines kept per task (the oldest go first). */
export const MAX_LOG_LINES = 200;
/** Longest stored line (bytes of UTF-8); longer lines are cut and end with TRUNCATED_MARKER. */
export const MAX_LOG_LINE_BYTES = 2048;
/** Most lines one request may append. */
export const MAX_LOG_LINES_PER_REQUEST = 100;
export const TRUNCATED_MARKER = '…[truncated]';
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The stored progress of a task: JSON text, and the delivery (attempt) that reported it. */
export interface ProgressRecord {
  value: string;
  attempt: number;
  updatedAtMs: number;
}

/** One line to append. */
export interface LogLineInput {
  level: LogLevel;
  message: string;
  atMs: number;
}

/** One stored line; `n` counts the task's lines from 1 (older lines may have been dropped). */
export interface LogLine extends LogLineInput {
  n: number;
  attempt: number;
}

const bad = (message: string, details: Record<string, unknown> = {}) => new CodeqError('VALIDATION_FAILED', message, details);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function leaseIdOf(o: Record<string, unknown>): string | undefined {
  const v = o['leaseId'];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw bad('invalid body', { field: 'leaseId', reason: 'leaseId must be a string' });
  return v;
}

/**
 * `POST /tasks/:id/progress` body `{"progress": <finite number | object>, "leaseId"?}`. A number
 * is conventionally a percentage 0–100 (not enforced); an object is stored as given.
 */
export function parseProgress(body: unknown): { value: string; leaseId?: string } {
  if (!isObj(body)) throw bad('invalid body');
  const p = body['progress'];
  return { value: progressText(p), ...withLease(leaseIdOf(body)) };
}

/** A progress value as stored JSON text; refuses what is not a finite number or an object. */
export function progressText(p: unknown): string {
  if (typeof p === 'number') {
    if (!Number.isFinite(p)) throw bad("invalid 'progress' (a number must be finite)", { field: 'progress' });
    return JSON.stringify(p);
  }
  if (!isObj(p)) throw bad("invalid 'progress' (a finite number or a JSON object)", { field: 'progress' });
  if (jsonTooDeep(p)) throw depthError();
  const text = JSON.stringify(p);
  if (Buffer.byteLength(text, 'utf8') > MAX_PROGRESS_BYTES) throw bad(`invalid 'progress' (larger than ${MAX_PROGRESS_BYTES} bytes of JSON)`, { field: 'progress', limit: MAX_PROGRESS_BYTES });
  return text;
}

/** Cut a line to MAX_LOG_LINE_BYTES of UTF-8 (marker included); NUL characters become U+FFFD. */
export function clampLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  const text = s.replace(/\u0000/g, '\ufffd');
  if (Buffer.byteLength(text, 'utf8') <= MAX_LOG_LINE_BYTES) return text;
  const room = MAX_LOG_LINE_BYTES - Buffer.byteLength(TRUNCATED_MARKER, 'utf8');
  let cut = Buffer.from(text, 'utf8').subarray(0, room).toString('utf8');
  if (cut.endsWith('\ufffd')) cut = cut.slice(0, -1); // a character split by the cut
  return cut + TRUNCATED_MARKER;
}

/**
 * `POST /tasks/:id/logs` body `{"lines": [<string> | {"level"?, "message", "at"?}], "leaseId"?}`:
 * 1..MAX_LOG_LINES_PER_REQUEST lines; long lines are truncated (not refused).
 */
export function parseLogLines(body: unknown, now: number): { lines: LogLineInput[]; leaseId?: string } {
  if (!isObj(body)) throw bad('invalid body');
  const raw = body['lines'];
  if (!Array.isArray(raw) || raw.length === 0) throw bad("invalid 'lines' (a non-empty array of strings or {level, message})", { field: 'lines' });
  if (raw.length > MAX_LOG_LINES_PER_REQUEST) throw bad(`invalid 'lines' (at most ${MAX_LOG_LINES_PER_REQUEST} lines per request)`, { field: 'lines', limit: MAX_LOG_LINES_PER_REQUEST });
  const lines = raw.map((l, i) => logLine(l, i, now));
  return { lines, ...withLease(leaseIdOf(body)) };
}

function logLine(l: unknown, i: number, now: number): LogLineInput {
  if (typeof l === 'string') return { level: 'info', message: clampLine(l), atMs: now };
  if (!isObj(l) || typeof l['message'] !== 'string') throw bad(`invalid 'lines[${i}]' (a string or {level, message})`, { field: `lines[${i}]` });
  const level = l['level'] ?? 'info';
  if (typeof level !== 'string' || !(LOG_LEVELS as readonly string[]).includes(level)) throw bad(`invalid 'lines[${i}].level' (one of ${LOG_LEVELS.join(', ')})`, { field: `lines[${i}].level` });
  let atMs = now;
  if (l['at'] !== undefined && l['at'] !== null) {
    const at = typeof l['at'] === 'string' ? Date.parse(l['at']) : NaN;
    if (!Number.isFinite(at)) throw bad(`invalid 'lines[${i}].at' (RFC 3339)`, { field: `lines[${i}].at` });
    // A worker's clock is not trusted to reorder the log: a line is never dated after its arrival.
    atMs = Math.min(at, now);
  }
  return { level: level as LogLevel, message: clampLine(l['message']), atMs };
}

function withLease(leaseId: string | undefined): { leaseId?: string } {
  return leaseId ? { leaseId } : {};
}

/** The progress shown on a task: only the current delivery's (a new attempt starts without one). */
export function currentProgress(p: ProgressRecord | null, attempts: number): unknown {
  if (!p || p.attempt !== attempts) return undefined;
  return JSON.parse(p.value) as unknown;
}

export function logLineToJson(l: LogLine): Record<string, unknown> {
  return { n: l.n, attempt: l.attempt, level: l.level, message: l.message, at: formatTime(l.atMs) };
}
