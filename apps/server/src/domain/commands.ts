/**
 * The typed commands of the queue and their one validator (issue 11 item 3).
 *
 * Both transports decode their wire format into transport-neutral *fields* (`undefined` = unset;
 * the gRPC adapter maps proto3 defaults `0` / `""` to unset) and call the validators below, which
 * apply every limit and rule and produce the typed commands the services take. Only decoding
 * failures (an HTTP bind error, an unparsable `result_json`) stay in the adapters:
 * `domain/requests.ts` (HTTP JSON bodies) and `modules/streams/stream-commands.ts` (proto events).
 *
 * Where the specs give a transport its own text for the same rule (http-api §6, grpc-streams §4.5,
 * §5.3), the text comes from {@link TEXT} by transport; the rule, the limit and the error code are
 * the same. To add a field or a command: add it to the fields type, check it here, and map it in
 * both adapters; `test/validation-parity.int-spec.ts` then takes one row per invalid case.
 */
import { cleanTraceState, formatTraceParent, parseTraceParent } from '@codeq/proto/trace-context';
import { CodeqError } from '@codeq/proto/errors';
import { goJson } from './go-json.js';
import { assertStorableText, CONTROL_CHARS, depthError, jsonTooDeep } from './input-guards.js';

export type Transport = 'http' | 'grpc';

/** Upper bound for lease and heartbeat extensions (upstream has none; documented deviation). */
export const MAX_LEASE_SECONDS = 7 * 86400;
export const MAX_COMMAND_LENGTH = 256;
export const MAX_KEY_LENGTH = 256;
export const MAX_MAX_ATTEMPTS = 1000;
/** Most commands one claim may name (issue 12 item 7). */
export const MAX_CLAIM_COMMANDS = 100;
export const MAX_CLAIM_BATCH = 10;
export const MAX_CLAIM_WAIT_SECONDS = 30;
/** Largest `Ready.count` of a worker stream (upstream: unbounded; compatibility.md S6). */
export const MAX_READY_COUNT = 1000;

export const bad = (message: string, details: Record<string, unknown> = {}) => new CodeqError('VALIDATION_FAILED', message, details);

/** Texts the specs define per transport for the same rule (everything else is worded once). */
export const TEXT = {
  commandRequired: { http: 'invalid body', grpc: 'command is required' },
  delayNegative: { http: "invalid 'delaySeconds' (must be >= 0)", grpc: 'delaySeconds must be >= 0' },
  statusRequired: { http: 'invalid request body', grpc: 'invalid status (must be COMPLETED or FAILED): ""' },
  status: { http: () => 'invalid status', grpc: (s: string) => `invalid status (must be COMPLETED or FAILED): "${s}"` },
} as const;

/** Stored as given: no control characters, not blank, bounded. */
export function validCommand(c: string): boolean {
  return !!c.trim() && c.length <= MAX_COMMAND_LENGTH && !CONTROL_CHARS.test(c);
}

export function validWebhook(url: string): boolean {
  if (CONTROL_CHARS.test(url)) return false; // the URL is stored as given: no NUL or control characters
  try {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

// --- create --------------------------------------------------------------------------------------

/** A payload as decoded: a JSON value (HTTP bodies, JSON bytes) or other text (non-JSON bytes). */
export type PayloadField = { json: unknown } | { text: string };

export interface CreateFields {
  command?: string;
  /** Unset: required for a single HTTP create, `null` otherwise. */
  payload?: PayloadField;
  priority?: number;
  webhook?: string;
  maxAttempts?: number;
  idempotencyKey?: string;
  /** Epoch ms, or `NaN` for an unparsable time. */
  runAtMs?: number;
  delaySeconds?: number;
}

/** CreateTask: a validated create, for both transports. */
export interface CreateTask {
  command: string;
  /** Payload as Go-style JSON text (or verbatim non-JSON stream bytes). */
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
 * The trace context to store: the first well-formed `traceparent` among the candidates
 * (normalised) and its `tracestate`, or nulls. A malformed one is ignored, not refused (W3C Trace
 * Context: a receiver restarts the trace), so tracing can never make a create fail.
 */
export function traceOf(...candidates: (TraceInput | undefined)[]): { traceParent: string | null; traceState: string | null } {
  for (const c of candidates) {
    const p = typeof c?.traceParent === 'string' ? parseTraceParent(c.traceParent) : null;
    if (p) return { traceParent: formatTraceParent(p), traceState: typeof c?.traceState === 'string' ? cleanTraceState(c.traceState) : null };
  }
  return { traceParent: null, traceState: null };
}

export interface CreateOptions {
  /** Command and payload must be present (a single HTTP create, every stream create). */
  required: boolean;
}

/**
 * Validate a create, in one order for both transports: presence, `runAt`, `delaySeconds`,
 * command, webhook, idempotency key, `maxAttempts`, payload.
 */
export function validateCreate(f: CreateFields, now: number, t: Transport, opts: CreateOptions = { required: true }): CreateTask {
  if (opts.required) {
    if (!f.command) throw bad(TEXT.commandRequired[t], { reason: 'command is required' });
    if (t === 'http' && f.payload === undefined) throw bad('invalid body', { reason: 'payload is required' });
  }
  let visibleAtMs: number | null = null;
  const delay = f.delaySeconds ?? 0;
  // HTTP ignores delaySeconds when runAt is given (http-api §6.1); the stream checks it first (§5.3).
  if (t === 'grpc' && delay < 0) throw bad(TEXT.delayNegative[t]);
  if (f.runAtMs !== undefined) {
    if (Number.isNaN(f.runAtMs)) throw bad("invalid 'runAt' (use RFC3339)");
    visibleAtMs = f.runAtMs > now ? f.runAtMs : null;
  } else {
    if (delay < 0) throw bad(TEXT.delayNegative[t]);
    if (delay > 0) visibleAtMs = now + delay * 1000;
  }
  const command = f.command ?? '';
  if (!validCommand(command)) throw bad('invalid command');
  if (f.webhook && !validWebhook(f.webhook)) throw bad('invalid webhook url');
  const key = f.idempotencyKey;
  if (key !== undefined && (key.length > MAX_KEY_LENGTH || CONTROL_CHARS.test(key))) {
    throw bad(`invalid 'idempotencyKey' (at most ${MAX_KEY_LENGTH} printable characters)`);
  }
  const maxAttempts = f.maxAttempts ?? 0;
  if (maxAttempts > MAX_MAX_ATTEMPTS) throw bad(`invalid 'maxAttempts' (must be <= ${MAX_MAX_ATTEMPTS})`);
  let payload = 'null';
  if (f.payload && 'json' in f.payload) {
    if (jsonTooDeep(f.payload.json)) throw depthError();
    payload = goJson(f.payload.json);
  } else if (f.payload) {
    assertStorableText(f.payload.text, 'payload');
    payload = f.payload.text;
  }
  return {
    command,
    payload,
    priority: Math.min(9, Math.max(0, f.priority ?? 0)),
    webhook: f.webhook ? f.webhook : null,
    maxAttempts,
    idempotencyKey: key ? key : null,
    visibleAtMs,
  };
}

// --- claim ---------------------------------------------------------------------------------------

export interface ClaimFields {
  commands?: string[];
  leaseSeconds?: number;
  waitSeconds?: number;
  count?: number;
}

/** Claim: commands as requested (authorised by the lease service), lease, wait and count. */
export interface Claim {
  commands: string[];
  leaseSeconds: number;
  waitSeconds: number;
  count: number;
}

/** `single`: HTTP claim (may wait); `batch`: HTTP claim/batch (count required); `ready`: a stream Ready. */
export type ClaimMode = 'single' | 'batch' | 'ready';

function leaseValue(v: number | undefined, def: number, field: string): number {
  if (v === undefined || v <= 0) return def;
  if (v > MAX_LEASE_SECONDS) throw bad(`invalid '${field}' (must be <= ${MAX_LEASE_SECONDS})`);
  return v;
}

export function validateClaim(f: ClaimFields, defaultLeaseSeconds: number, mode: ClaimMode): Claim {
  let commands = f.commands ?? [];
  if (mode === 'ready') {
    // The stream trims and skips blanks; a list of blanks only is refused (grpc-streams §4.4).
    const requested = commands.map((c) => c.trim()).filter(Boolean);
    if (commands.length && !requested.length) throw new CodeqError('FORBIDDEN', 'event type not allowed');
    commands = requested;
  }
  if (commands.length > MAX_CLAIM_COMMANDS) throw bad(`invalid 'commands' (at most ${MAX_CLAIM_COMMANDS})`);
  const leaseSeconds = leaseValue(f.leaseSeconds, defaultLeaseSeconds, 'leaseSeconds');
  let waitSeconds = 0;
  let count = 1;
  if (mode === 'batch') {
    const c = f.count;
    if (c === undefined || c < 1) throw bad('invalid body', { reason: 'count is required and must be >= 1' });
    if (c > MAX_CLAIM_BATCH) throw bad(`count exceeds maximum of ${MAX_CLAIM_BATCH}`);
    count = c;
  } else if (mode === 'ready') {
    // A Ready's count is a credit: 0 means one, the bound is S6 (compatibility.md).
    count = Math.min(Math.max(1, f.count ?? 1), MAX_READY_COUNT);
  } else {
    const w = f.waitSeconds ?? 0;
    waitSeconds = w <= 0 ? 0 : Math.min(w, MAX_CLAIM_WAIT_SECONDS);
  }
  for (const c of commands) if (!validCommand(c)) throw bad('invalid command');
  return { commands, leaseSeconds, waitSeconds, count };
}

// --- lease commands ------------------------------------------------------------------------------

/** Heartbeat: extend the lease of `taskId` to now + `extendSeconds`. */
export interface Heartbeat {
  taskId: string;
  leaseId?: string;
  extendSeconds: number;
}

export function validateHeartbeat(taskId: string, f: { extendSeconds?: number; leaseId?: string }, defaultLeaseSeconds: number): Heartbeat {
  const extendSeconds = leaseValue(f.extendSeconds, defaultLeaseSeconds, 'extendSeconds');
  return f.leaseId ? { taskId, extendSeconds, leaseId: f.leaseId } : { taskId, extendSeconds };
}

/** Nack: retry after `delaySeconds` (unset or ≤ 0: backoff), or dead-letter. */
export interface Nack {
  taskId: string;
  leaseId?: string;
  delaySeconds?: number;
  reason: string;
}

export function validateNack(taskId: string, f: { delaySeconds?: number; reason?: string; leaseId?: string }): Nack {
  const reason = f.reason ?? '';
  assertStorableText(reason, 'reason');
  const out: Nack = { taskId, reason };
  if (f.delaySeconds !== undefined && f.delaySeconds > 0) out.delaySeconds = f.delaySeconds;
  if (f.leaseId) out.leaseId = f.leaseId;
  return out;
}

/** Abandon: back to the ready queue, attempts unchanged. */
export interface Abandon {
  taskId: string;
  leaseId?: string;
}

export function validateAbandon(taskId: string, f: { leaseId?: string }): Abandon {
  return f.leaseId ? { taskId, leaseId: f.leaseId } : { taskId };
}

// --- results -------------------------------------------------------------------------------------

export interface ArtifactFields {
  name: string;
  url?: string;
  contentBase64?: string;
  contentType?: string;
}

export interface ArtifactInput {
  name: string;
  url?: string;
  content?: Buffer;
  contentType?: string;
}

export interface ResultFields {
  status?: string;
  /** The decoded result value (`null` = none). */
  result?: unknown;
  /** Why the wire's result could not be decoded (checked after the status, as grpc-streams §4.5). */
  resultUndecodable?: string;
  error?: string;
  leaseId?: string;
  artifacts?: ArtifactFields[];
}

/** SubmitResult: finish `taskId` as COMPLETED or FAILED. */
export interface SubmitResult {
  taskId: string;
  leaseId?: string;
  status: 'COMPLETED' | 'FAILED';
  /** Result object as JSON text, or null. */
  result: string | null;
  error: string | null;
  artifacts: ArtifactInput[];
}

const ARTIFACT_NAME = /^[A-Za-z0-9._-][A-Za-z0-9 ._+=@,-]{0,254}$/;

function artifactOf(a: ArtifactFields): ArtifactInput | null {
  const { name } = a;
  if (a.url) return { name, url: a.url };
  if (!a.contentBase64) return null;
  if (!ARTIFACT_NAME.test(name) || name === '.' || name === '..' || name.includes('..')) {
    throw bad(`artifact ${name} upload: invalid artifact name (letters, digits, '.', '_', '-', at most 255 characters)`);
  }
  const clean = a.contentBase64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.replace(/=+$/, '').length % 4 === 1) {
    throw bad(`artifact ${name} base64 decode: illegal base64 data`);
  }
  return { name, content: Buffer.from(clean, 'base64'), ...(a.contentType ? { contentType: a.contentType } : {}) };
}

/**
 * Validate a result. `statusRequired` is the text for a missing status (the HTTP routes word their
 * bind errors differently: `invalid request body` for one result, `invalid body` in a batch).
 */
export function validateResult(taskId: string, f: ResultFields, t: Transport, statusRequired: string = TEXT.statusRequired[t]): SubmitResult {
  const artifacts: ArtifactInput[] = [];
  for (const a of f.artifacts ?? []) {
    const art = artifactOf(a);
    if (art) artifacts.push(art);
  }
  const { status, error } = f;
  const result = f.result ?? null;
  if (!status) throw bad(statusRequired, { reason: 'status is required' });
  if (status !== 'COMPLETED' && status !== 'FAILED') throw bad(TEXT.status[t](status));
  if (f.resultUndecodable) throw bad(f.resultUndecodable);
  if (status === 'COMPLETED' && result === null) throw bad('result required when status=COMPLETED');
  if (status === 'FAILED' && (!error || !error.trim())) throw bad('error required when status=FAILED');
  assertStorableText(error, 'error');
  if (jsonTooDeep(result)) throw depthError();
  const out: SubmitResult = { taskId, status, result: result === null ? null : JSON.stringify(result), error: error ? error : null, artifacts };
  if (f.leaseId) out.leaseId = f.leaseId;
  return out;
}
