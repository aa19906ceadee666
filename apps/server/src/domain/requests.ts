/**
 * Request parsing and validation with upstream's messages (http-api §6). Everything is checked
 * before any side effect; a failure throws CodeqError('VALIDATION_FAILED', <message>).
 */
import { CodeqError } from '@codeq/proto/errors';
import { cleanTraceState, formatTraceParent, parseTraceParent } from '@codeq/proto/trace-context';
import { goJson } from './go-json.js';
import { parseRfc3339 } from './time.js';
import { assertStorableText, depthError, jsonTooDeep } from './input-guards.js';

type Obj = Record<string, unknown>;

const INT32_MAX = 2 ** 31 - 1;
/** Upper bound for lease and heartbeat extensions (upstream has none; documented deviation). */
export const MAX_LEASE_SECONDS = 7 * 86400;
export const MAX_BATCH = 100;
export const MAX_CLAIM_BATCH = 10;
export const MAX_COMMAND_LENGTH = 256;
export const MAX_KEY_LENGTH = 256;
export const MAX_CLAIM_WAIT_SECONDS = 30;
/** Most commands one claim may name (issue 12 item 7). */
export const MAX_CLAIM_COMMANDS = 100;
export const MAX_RESULT_WAIT_SECONDS = 60;

export const bad = (message: string, details: Obj = {}) => new CodeqError('VALIDATION_FAILED', message, details);

/** A JSON object as JSON.parse builds it (markers for unparsable bodies have a null prototype). */
function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** Field readers that raise `generic` (the route's bind-error message) on a type mismatch. */
class Reader {
  constructor(private readonly o: Obj, private readonly generic: string) {}
  has(k: string): boolean {
    return this.o[k] !== undefined && this.o[k] !== null;
  }
  int(k: string): number | undefined {
    const v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > INT32_MAX) throw bad(this.generic, { field: k, reason: `${k} must be an integer` });
    return v;
  }
  str(k: string): string | undefined {
    const v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw bad(this.generic, { field: k, reason: `${k} must be a string` });
    return v;
  }
  strings(k: string): string[] | undefined {
    const v = this.o[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(this.generic, { field: k, reason: `${k} must be a list of strings` });
    return v as string[];
  }
  raw(k: string): unknown {
    return this.o[k];
  }
}

function reader(body: unknown, generic = 'invalid body'): Reader {
  if (!isObj(body)) throw bad(generic);
  return new Reader(body, generic);
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export function validWebhook(url: string): boolean {
  if (CONTROL.test(url)) return false; // the URL is stored as given: no NUL or control characters
  try {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

export interface CreateInput {
  command: string;
  /** Payload as Go-style JSON text. */
  payload: string;
  priority: number;
  webhook: string | null;
  /** ≤ 0 = server default. */
  maxAttempts: number;
  idempotencyKey: string | null;
  /** Epoch ms when the task becomes claimable, or null for now. */
  visibleAtMs: number | null;
  /** W3C trace context of the producer (validated; null when absent or malformed). */
  traceParent?: string | null;
  traceState?: string | null;
}

/** Raw W3C trace context as it arrived (HTTP `traceparent`/`tracestate` headers, body fields, proto fields). */
export interface TraceInput {
  traceParent?: unknown;
  traceState?: unknown;
}

/**
 * The trace context to store: a well-formed `traceparent` (normalised) and its `tracestate`, or
 * nulls. A malformed one is ignored, not refused (W3C Trace Context §3.2: a receiver restarts the
 * trace), so tracing can never make a create fail.
 */
export function traceOf(...candidates: (TraceInput | undefined)[]): { traceParent: string | null; traceState: string | null } {
  for (const c of candidates) {
    const p = typeof c?.traceParent === 'string' ? parseTraceParent(c.traceParent) : null;
    if (p) return { traceParent: formatTraceParent(p), traceState: typeof c?.traceState === 'string' ? cleanTraceState(c.traceState) : null };
  }
  return { traceParent: null, traceState: null };
}

/**
 * Parse a create body (single, or one batch item with `item` = true: required fields are then
 * checked as per-item errors, and a missing payload is stored as `null`, as upstream does).
 */
export function parseCreate(body: unknown, now: number, item = false, trace?: TraceInput): CreateInput {
  const r = reader(body);
  const command = r.str('command');
  const payloadRaw = r.raw('payload');
  const priority = r.int('priority') ?? 0;
  const webhook = r.str('webhook');
  const maxAttempts = r.int('maxAttempts') ?? 0;
  const idempotencyKey = r.str('idempotencyKey');
  const runAt = r.str('runAt');
  const delaySeconds = r.int('delaySeconds') ?? 0;
  if (!item) {
    if (!command) throw bad('invalid body', { reason: 'command is required' });
    if (payloadRaw === undefined || payloadRaw === null) throw bad('invalid body', { reason: 'payload is required' });
  }
  let visibleAtMs: number | null = null;
  if (runAt !== undefined && runAt !== '') {
    const t = parseRfc3339(runAt);
    if (t === null) throw bad("invalid 'runAt' (use RFC3339)");
    visibleAtMs = t > now ? t : null;
  } else {
    if (delaySeconds < 0) throw bad("invalid 'delaySeconds' (must be >= 0)");
    if (delaySeconds > 0) visibleAtMs = now + delaySeconds * 1000;
  }
  if (!command || !command.trim() || command.length > MAX_COMMAND_LENGTH || CONTROL.test(command)) throw bad('invalid command');
  if (webhook !== undefined && webhook !== '' && !validWebhook(webhook)) throw bad('invalid webhook url');
  if (idempotencyKey !== undefined && (idempotencyKey.length > MAX_KEY_LENGTH || CONTROL.test(idempotencyKey))) {
    throw bad(`invalid 'idempotencyKey' (at most ${MAX_KEY_LENGTH} printable characters)`);
  }
  if (maxAttempts > 1000) throw bad("invalid 'maxAttempts' (must be <= 1000)");
  if (jsonTooDeep(payloadRaw)) throw depthError();
  return {
    command,
    payload: payloadRaw === undefined ? 'null' : goJson(payloadRaw),
    priority: Math.min(9, Math.max(0, priority)),
    webhook: webhook ? webhook : null,
    maxAttempts,
    idempotencyKey: idempotencyKey ? idempotencyKey : null,
    visibleAtMs,
    // codeQ-TS: per-item body fields (batches), else the request's traceparent/tracestate headers.
    ...traceOf(body && typeof body === 'object' ? body : undefined, trace),
  };
}

export function parseBatchCreate(body: unknown): unknown[] {
  const r = reader(body);
  const tasks = r.raw('tasks');
  if (tasks === undefined || tasks === null) throw bad('invalid body', { reason: 'tasks is required' });
  if (!Array.isArray(tasks) || tasks.length === 0) throw bad('invalid body', { reason: 'tasks must be a non-empty list' });
  if (tasks.length > MAX_BATCH) throw bad(`batch size exceeds maximum of ${MAX_BATCH}`);
  // A type mismatch inside any item fails the whole request (as a Go bind would).
  for (const t of tasks) {
    if (!isObj(t)) throw bad('invalid body', { reason: 'each task must be an object' });
    const ir = new Reader(t, 'invalid body');
    ir.str('command');
    ir.int('priority');
    ir.str('webhook');
    ir.int('maxAttempts');
    ir.str('idempotencyKey');
    ir.str('runAt');
    ir.int('delaySeconds');
  }
  return tasks;
}

export interface ClaimInput {
  commands: string[];
  leaseSeconds: number;
  waitSeconds: number;
  count: number;
}

function leaseValue(v: number | undefined, def: number, field: string): number {
  if (v === undefined || v <= 0) return def;
  if (v > MAX_LEASE_SECONDS) throw bad(`invalid '${field}' (must be <= ${MAX_LEASE_SECONDS})`);
  return v;
}

export function parseClaim(body: unknown, defaultLeaseSeconds: number, batch: boolean): ClaimInput {
  const r = reader(body);
  const commands = r.strings('commands') ?? [];
  if (commands.length > MAX_CLAIM_COMMANDS) throw bad(`invalid 'commands' (at most ${MAX_CLAIM_COMMANDS})`);
  const leaseSeconds = leaseValue(r.int('leaseSeconds'), defaultLeaseSeconds, 'leaseSeconds');
  let waitSeconds = 0;
  let count = 1;
  if (batch) {
    const c = r.int('count');
    if (c === undefined || c < 1) throw bad('invalid body', { reason: 'count is required and must be >= 1' });
    if (c > MAX_CLAIM_BATCH) throw bad(`count exceeds maximum of ${MAX_CLAIM_BATCH}`);
    count = c;
  } else {
    const w = r.int('waitSeconds') ?? 0;
    waitSeconds = w <= 0 ? 0 : Math.min(w, MAX_CLAIM_WAIT_SECONDS);
  }
  for (const c of commands) if (!c.trim() || c.length > MAX_COMMAND_LENGTH || CONTROL.test(c)) throw bad('invalid command');
  return { commands, leaseSeconds, waitSeconds, count };
}

export function parseHeartbeat(body: unknown, defaultLeaseSeconds: number): { extendSeconds: number; leaseId?: string } {
  const r = reader(body);
  const extendSeconds = leaseValue(r.int('extendSeconds'), defaultLeaseSeconds, 'extendSeconds');
  const leaseId = r.str('leaseId');
  return leaseId ? { extendSeconds, leaseId } : { extendSeconds };
}

export function parseNack(body: unknown): { delaySeconds?: number; reason: string; leaseId?: string } {
  const r = reader(body);
  const delaySeconds = r.int('delaySeconds');
  const reason = r.str('reason') ?? '';
  assertStorableText(reason, 'reason');
  const leaseId = r.str('leaseId');
  const out: { delaySeconds?: number; reason: string; leaseId?: string } = { reason };
  if (delaySeconds !== undefined) out.delaySeconds = delaySeconds;
  if (leaseId) out.leaseId = leaseId;
  return out;
}

/** Abandon ignores its body upstream; we only read an optional `leaseId` from a JSON object. */
export function parseAbandon(body: unknown): { leaseId?: string } {
  if (!isObj(body)) return {};
  const v = body['leaseId'];
  return typeof v === 'string' && v ? { leaseId: v } : {};
}

export interface ArtifactInput {
  name: string;
  url?: string;
  content?: Buffer;
  contentType?: string;
}

export interface ResultInput {
  status: 'COMPLETED' | 'FAILED';
  result: string | null;
  error: string | null;
  artifacts: ArtifactInput[];
  leaseId?: string;
}

const ARTIFACT_NAME = /^[A-Za-z0-9._-][A-Za-z0-9 ._+=@,-]{0,254}$/;

/** Parse and validate a result body (bind failures say `invalid request body`, as upstream). */
export function parseResult(body: unknown, generic = 'invalid request body', withArtifacts = true): ResultInput {
  const r = reader(body, generic);
  const status = r.str('status');
  const result = r.raw('result');
  if (result !== undefined && result !== null && !isObj(result)) throw bad(generic, { reason: 'result must be a JSON object' });
  const error = r.str('error');
  const leaseId = r.str('leaseId');
  r.str('workerId'); // accepted for compatibility, ignored
  const artifacts: ArtifactInput[] = [];
  const rawArtifacts = r.raw('artifacts');
  if (rawArtifacts !== undefined && rawArtifacts !== null) {
    if (!Array.isArray(rawArtifacts)) throw bad(generic, { reason: 'artifacts must be a list' });
    for (const a of rawArtifacts) {
      if (!isObj(a)) throw bad(generic, { reason: 'each artifact must be an object' });
      const ar = new Reader(a, generic);
      const name = ar.str('name') ?? '';
      const url = ar.str('url');
      const b64 = ar.str('contentBase64');
      const contentType = ar.str('contentType');
      if (!withArtifacts) continue;
      if (url) {
        artifacts.push({ name, url });
      } else if (b64) {
        if (!ARTIFACT_NAME.test(name) || name === '.' || name === '..' || name.includes('..')) {
          throw bad(`artifact ${name} upload: invalid artifact name (letters, digits, '.', '_', '-', at most 255 characters)`);
        }
        const clean = b64.replace(/\s+/g, '');
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.replace(/=+$/, '').length % 4 === 1) {
          throw bad(`artifact ${name} base64 decode: illegal base64 data`);
        }
        artifacts.push({ name, content: Buffer.from(clean, 'base64'), ...(contentType ? { contentType } : {}) });
      }
    }
  }
  if (!status) throw bad(generic, { reason: 'status is required' });
  if (status !== 'COMPLETED' && status !== 'FAILED') throw bad('invalid status');
  if (status === 'COMPLETED' && (result === undefined || result === null)) throw bad('result required when status=COMPLETED');
  if (status === 'FAILED' && (!error || !error.trim())) throw bad('error required when status=FAILED');
  assertStorableText(error, 'error');
  if (jsonTooDeep(result)) throw depthError();
  const out: ResultInput = {
    status,
    result: result === undefined || result === null ? null : JSON.stringify(result),
    error: error ? error : null,
    artifacts,
  };
  if (leaseId) out.leaseId = leaseId;
  return out;
}

export function parseBatchResults(body: unknown): Obj[] {
  const r = reader(body);
  const results = r.raw('results');
  if (!Array.isArray(results) || results.length === 0) throw bad('invalid body', { reason: 'results must be a non-empty list' });
  if (results.length > MAX_BATCH) throw bad(`batch size exceeds maximum of ${MAX_BATCH}`);
  for (const it of results) if (!isObj(it)) throw bad('invalid body', { reason: 'each result must be an object' });
  return results as Obj[];
}

export function parseCleanup(body: unknown, now: number): { limit: number; before: number; beforeText: string; limitEcho: number } {
  const o = isObj(body) ? body : {};
  const limitRaw = typeof o['limit'] === 'number' && Number.isInteger(o['limit']) ? o['limit'] : 0;
  const limit = limitRaw <= 0 ? 1000 : Math.min(limitRaw, 100_000);
  const b = o['before'];
  if (typeof b === 'string' && b !== '') {
    const t = parseRfc3339(b);
    if (t === null) throw bad("invalid 'before' (use RFC3339)");
    return { limit, before: t, beforeText: b.replace(/\.\d+/, ''), limitEcho: limitRaw };
  }
  if (b !== undefined && b !== null && typeof b !== 'string') throw bad("invalid 'before' (use RFC3339)");
  return { limit, before: now, beforeText: new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z'), limitEcho: limitRaw };
}
