/**
 * Operator API requests (issue 14): listing filters, the opaque keyset cursor, redrive bodies.
 * Everything is validated before any side effect; failures are 400 VALIDATION_FAILED.
 */
import { CodeqError } from '@codeq/proto/errors';
import { LIST_STATUSES, commandKeyOf, type ListStatus } from './task.js';
import { parseRfc3339 } from './time.js';

export const LIST_DEFAULT_LIMIT = 50;
export const LIST_MAX_LIMIT = 500;
export const REDRIVE_DEFAULT_LIMIT = 100;
export const REDRIVE_MAX = 1000;

const bad = (message: string, details: Record<string, unknown> = {}) => new CodeqError('VALIDATION_FAILED', message, details);

export interface Cursor {
  createdAtMs: number;
  id: string;
}

/** Opaque to clients: base64url of `[createdAtMs, id]` of the last row of the page. */
export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.createdAtMs, c.id]), 'utf8').toString('base64url');
}

export function decodeCursor(s: string): Cursor {
  let v: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(s) || s.length > 1024) throw new Error('not base64url');
    v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  } catch {
    throw bad('invalid cursor', { field: 'cursor' });
  }
  if (!Array.isArray(v) || v.length !== 2 || !Number.isSafeInteger(v[0]) || typeof v[1] !== 'string' || !v[1]) throw bad('invalid cursor', { field: 'cursor' });
  return { createdAtMs: v[0] as number, id: v[1] };
}

export interface ListInput {
  commandKey?: string;
  statuses?: ListStatus[];
  dlq: boolean;
  createdAfterMs?: number;
  createdBeforeMs?: number;
  limit: number;
  after?: Cursor;
}

type Query = Record<string, unknown>;

function one(q: Query, k: string): string | undefined {
  const v = q[k];
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) throw bad(`'${k}' given more than once`, { field: k });
  if (typeof v !== 'string') throw bad(`invalid '${k}'`, { field: k });
  return v;
}

function limitOf(q: Query, def: number, max: number): number {
  const raw = one(q, 'limit');
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || Number(raw) > max) throw bad(`invalid 'limit' (1..${max})`, { field: 'limit' });
  return Number(raw);
}

function timeOf(q: Query, k: string): number | undefined {
  const raw = one(q, k);
  if (raw === undefined || raw === '') return undefined;
  const t = parseRfc3339(raw);
  if (t === null) throw bad(`invalid '${k}' (use RFC3339)`, { field: k });
  return t;
}

/** GET /v1/codeq/tasks query (and GET /admin/dlq with `dlqOnly`). */
export function parseListQuery(q: Query, dlqOnly = false): ListInput {
  const command = one(q, 'command');
  const statusRaw = dlqOnly ? undefined : one(q, 'status');
  const dlqRaw = dlqOnly ? 'true' : one(q, 'dlq');
  if (dlqRaw !== undefined && dlqRaw !== '' && dlqRaw !== 'true' && dlqRaw !== 'false') throw bad("invalid 'dlq' (true or false)", { field: 'dlq' });
  let statuses: ListStatus[] | undefined;
  if (statusRaw !== undefined && statusRaw.trim() !== '') {
    statuses = [];
    for (const part of statusRaw.split(',')) {
      const s = part.trim().toUpperCase();
      if (!(LIST_STATUSES as readonly string[]).includes(s)) throw bad(`invalid 'status' (any of ${LIST_STATUSES.join(', ')})`, { field: 'status', value: part });
      if (!statuses.includes(s as ListStatus)) statuses.push(s as ListStatus);
    }
  }
  const out: ListInput = { dlq: dlqRaw === 'true', limit: limitOf(q, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT) };
  if (command !== undefined && command.trim() !== '') out.commandKey = commandKeyOf(command.trim());
  if (statuses) out.statuses = statuses;
  const after = timeOf(q, 'createdAfter');
  const before = timeOf(q, 'createdBefore');
  if (after !== undefined) out.createdAfterMs = after;
  if (before !== undefined) out.createdBeforeMs = before;
  const cursor = one(q, 'cursor');
  if (cursor !== undefined && cursor !== '') out.after = decodeCursor(cursor);
  return out;
}

export type RedriveInput = { ids: string[] } | { command: string; limit: number };

/** POST /admin/dlq/redrive body: `{"ids":[…]}` or `{"command":"…","limit":N}`. */
export function parseRedrive(body: unknown): RedriveInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('invalid body');
  const o = body as Record<string, unknown>;
  const hasIds = o['ids'] !== undefined && o['ids'] !== null;
  const hasCommand = o['command'] !== undefined && o['command'] !== null;
  if (hasIds === hasCommand) throw bad('invalid body', { reason: 'give either ids or command' });
  if (hasIds) {
    const ids = o['ids'];
    if (!Array.isArray(ids) || ids.some((x) => typeof x !== 'string' || !x)) throw bad('invalid body', { field: 'ids', reason: 'ids must be a list of task ids' });
    if (ids.length === 0 || ids.length > REDRIVE_MAX) throw bad(`invalid 'ids' (1..${REDRIVE_MAX} ids)`, { field: 'ids' });
    return { ids: ids as string[] };
  }
  const command = o['command'];
  if (typeof command !== 'string' || !command.trim()) throw bad('invalid command', { field: 'command' });
  const limit = o['limit'] ?? REDRIVE_DEFAULT_LIMIT;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > REDRIVE_MAX) throw bad(`invalid 'limit' (1..${REDRIVE_MAX})`, { field: 'limit' });
  return { command: command.trim(), limit };
}
