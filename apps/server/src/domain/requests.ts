/**
 * The HTTP adapter of the input layer: JSON request bodies → typed commands (http-api §6). Bind
 * errors (a field of the wrong JSON type, a body that is not an object) are raised here with the
 * route's bind message; every rule and limit is applied by the shared validator in
 * `commands.ts`, the same one the gRPC streams use. A failure throws
 * CodeqError('VALIDATION_FAILED', <message>) before any side effect.
 */
import { parseRfc3339 } from './time.js';
import {
  bad,
  validateAbandon,
  validateClaim,
  validateCreate,
  validateHeartbeat,
  validateNack,
  validateResult,
  type Abandon,
  type ArtifactFields,
  type Claim,
  type CreateFields,
  type CreateTask,
  type Heartbeat,
  type Nack,
  type ResultFields,
  type SubmitResult,
  type TraceInput,
  traceOf,
} from './commands.js';

export {
  bad,
  MAX_CLAIM_BATCH,
  MAX_CLAIM_COMMANDS,
  MAX_CLAIM_WAIT_SECONDS,
  MAX_COMMAND_LENGTH,
  MAX_KEY_LENGTH,
  MAX_LEASE_SECONDS,
  validWebhook,
  traceOf,
} from './commands.js';
/** @deprecated names kept for callers outside the task routes: use the command types. */
export type { CreateTask as CreateInput, Claim as ClaimInput, SubmitResult as ResultInput, ArtifactInput, TraceInput } from './commands.js';

type Obj = Record<string, unknown>;

const INT32_MAX = 2 ** 31 - 1;
export const MAX_BATCH = 100;
export const MAX_RESULT_WAIT_SECONDS = 60;

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
  // A body that is the JSON `null` binds like `{}` (Go decodes null into a struct as a no-op): the
  // routes without required fields (claim, heartbeat, nack) accept it, the others miss their fields.
  if (body === null) return new Reader({}, generic);
  if (!isObj(body)) throw bad(generic);
  return new Reader(body, generic);
}

/** Create fields of a JSON body (a JSON `null` counts as unset, as a Go bind does). */
function createFields(r: Reader): CreateFields {
  const f: CreateFields = {};
  const command = r.str('command');
  if (command !== undefined) f.command = command;
  if (r.has('payload')) f.payload = { json: r.raw('payload') };
  const priority = r.int('priority');
  if (priority !== undefined) f.priority = priority;
  const webhook = r.str('webhook');
  if (webhook !== undefined) f.webhook = webhook;
  const maxAttempts = r.int('maxAttempts');
  if (maxAttempts !== undefined) f.maxAttempts = maxAttempts;
  const key = r.str('idempotencyKey');
  if (key !== undefined) f.idempotencyKey = key;
  const runAt = r.str('runAt');
  if (runAt !== undefined && runAt !== '') f.runAtMs = parseRfc3339(runAt) ?? NaN;
  const delay = r.int('delaySeconds');
  if (delay !== undefined) f.delaySeconds = delay;
  return f;
}

/**
 * Parse a create body (single, or one batch item with `item` = true: required fields are then
 * checked as per-item errors, and a missing payload is stored as `null`, as upstream does).
 */
export function parseCreate(body: unknown, now: number, item = false, trace?: TraceInput): CreateTask {
  // codeQ-TS: the trace context comes from the body's traceParent/traceState (per batch item), else
  // the request's traceparent/tracestate headers; a malformed one is ignored.
  return { ...validateCreate(createFields(reader(body)), now, 'http', { required: !item }), ...traceOf(isObj(body) ? body : undefined, trace) };
}

/** A batch create body: each item validated on its own (a failed item is reported, not thrown). */
export function parseBatchCreate(body: unknown, now: number, trace?: TraceInput): (CreateTask | { error: string })[] {
  const r = reader(body);
  const tasks = r.raw('tasks');
  if (tasks === undefined || tasks === null) throw bad('invalid body', { reason: 'tasks is required' });
  if (!Array.isArray(tasks) || tasks.length === 0) throw bad('invalid body', { reason: 'tasks must be a non-empty list' });
  if (tasks.length > MAX_BATCH) throw bad(`batch size exceeds maximum of ${MAX_BATCH}`);
  // A type mismatch inside any item fails the whole request (as a Go bind would).
  const fields = tasks.map((t) => {
    if (!isObj(t)) throw bad('invalid body', { reason: 'each task must be an object' });
    return createFields(new Reader(t, 'invalid body'));
  });
  // Every item is validated before any is applied (issue 12 item 4).
  return fields.map((f, i) => {
    try {
      return { ...validateCreate(f, now, 'http', { required: false }), ...traceOf(tasks[i] as TraceInput, trace) };
    } catch (e) {
      return { error: e instanceof Error ? e.message : 'invalid body' };
    }
  });
}

export function parseClaim(body: unknown, defaultLeaseSeconds: number, batch: boolean): Claim {
  const r = reader(body);
  const commands = r.strings('commands');
  const leaseSeconds = r.int('leaseSeconds');
  const count = batch ? r.int('count') : undefined;
  const waitSeconds = batch ? undefined : r.int('waitSeconds');
  return validateClaim(
    {
      ...(commands !== undefined ? { commands } : {}),
      ...(leaseSeconds !== undefined ? { leaseSeconds } : {}),
      ...(count !== undefined ? { count } : {}),
      ...(waitSeconds !== undefined ? { waitSeconds } : {}),
    },
    defaultLeaseSeconds,
    batch ? 'batch' : 'single',
  );
}

export function parseHeartbeat(taskId: string, body: unknown, defaultLeaseSeconds: number): Heartbeat {
  const r = reader(body);
  const extendSeconds = r.int('extendSeconds');
  const leaseId = r.str('leaseId');
  return validateHeartbeat(taskId, { ...(extendSeconds !== undefined ? { extendSeconds } : {}), ...(leaseId !== undefined ? { leaseId } : {}) }, defaultLeaseSeconds);
}

export function parseNack(taskId: string, body: unknown): Nack {
  const r = reader(body);
  const delaySeconds = r.int('delaySeconds');
  const reason = r.str('reason');
  const leaseId = r.str('leaseId');
  return validateNack(taskId, {
    ...(delaySeconds !== undefined ? { delaySeconds } : {}),
    ...(reason !== undefined ? { reason } : {}),
    ...(leaseId !== undefined ? { leaseId } : {}),
  });
}

/** Abandon ignores its body upstream; we only read an optional `leaseId` from a JSON object. */
export function parseAbandon(taskId: string, body: unknown): Abandon {
  if (!isObj(body)) return validateAbandon(taskId, {});
  const v = body['leaseId'];
  return validateAbandon(taskId, typeof v === 'string' ? { leaseId: v } : {});
}

/** Result fields of a JSON body; bind failures raise `generic`. */
function resultFields(body: unknown, generic: string, withArtifacts: boolean): ResultFields {
  const r = reader(body, generic);
  const f: ResultFields = {};
  const status = r.str('status');
  if (status !== undefined) f.status = status;
  const result = r.raw('result');
  if (result !== undefined && result !== null && !isObj(result)) throw bad(generic, { reason: 'result must be a JSON object' });
  if (result !== undefined) f.result = result;
  const error = r.str('error');
  if (error !== undefined) f.error = error;
  const leaseId = r.str('leaseId');
  if (leaseId !== undefined) f.leaseId = leaseId;
  r.str('workerId'); // accepted for compatibility, ignored
  const rawArtifacts = r.raw('artifacts');
  if (rawArtifacts !== undefined && rawArtifacts !== null) {
    if (!Array.isArray(rawArtifacts)) throw bad(generic, { reason: 'artifacts must be a list' });
    const artifacts: ArtifactFields[] = [];
    for (const a of rawArtifacts) {
      if (!isObj(a)) throw bad(generic, { reason: 'each artifact must be an object' });
      const ar = new Reader(a, generic);
      const art: ArtifactFields = { name: ar.str('name') ?? '' };
      const url = ar.str('url');
      const b64 = ar.str('contentBase64');
      const contentType = ar.str('contentType');
      if (url !== undefined) art.url = url;
      if (b64 !== undefined) art.contentBase64 = b64;
      if (contentType !== undefined) art.contentType = contentType;
      artifacts.push(art);
    }
    if (withArtifacts) f.artifacts = artifacts;
  }
  return f;
}

/** Parse and validate a result body (bind failures say `invalid request body`, as upstream). */
export function parseResult(taskId: string, body: unknown): SubmitResult {
  return validateResult(taskId, resultFields(body, 'invalid request body', true), 'http');
}

/** A batch results body: each item validated on its own (artifacts are not uploaded in a batch). */
/** A batch results body; an item that fails validation is `{taskId, rejected: <message>}`. */
export function parseBatchResults(body: unknown): (SubmitResult | { taskId: string; rejected: string })[] {
  const r = reader(body);
  const results = r.raw('results');
  if (!Array.isArray(results) || results.length === 0) throw bad('invalid body', { reason: 'results must be a non-empty list' });
  if (results.length > MAX_BATCH) throw bad(`batch size exceeds maximum of ${MAX_BATCH}`);
  for (const it of results) if (!isObj(it)) throw bad('invalid body', { reason: 'each result must be an object' });
  return (results as Obj[]).map((item) => {
    const taskId = typeof item['taskId'] === 'string' ? item['taskId'] : '';
    try {
      if (!taskId) return { taskId, rejected: 'task not found' };
      return validateResult(taskId, resultFields(item, 'invalid body', false), 'http', 'invalid body');
    } catch (e) {
      return { taskId, rejected: e instanceof Error ? e.message : 'invalid body' };
    }
  });
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
