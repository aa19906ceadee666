/**
 * Schedules (issue 17 item 4): cron or fixed-interval templates that create tasks. Plain rules:
 * validation of the upsert body, slot arithmetic (cron-parser for cron, in the schedule's IANA
 * zone), and the decision taken for a due schedule. The service applies the decisions through the
 * ScheduleStore port with compare-and-set on `nextRunAtMs`; the slot's idempotency key makes the
 * task itself unique per slot (ADR 0008).
 */
import { createHash } from 'node:crypto';
import { CronExpressionParser } from 'cron-parser';
import { CodeqError } from '@codeq/proto/errors';
import { parseCreate } from './requests.js';

export type OverlapPolicy = 'skip' | 'allow';
export type MissedPolicy = 'fire_once' | 'skip';

/** The definition a client gives (the task template and its timing). */
export interface ScheduleDefinition {
  name: string;
  command: string;
  /** Go-style JSON text, as tasks store it. */
  payload: string;
  priority: number;
  /** ≤ 0 = server default (as for tasks). */
  maxAttempts: number;
  webhook: string | null;
  cron: string | null;
  everySeconds: number | null;
  timezone: string;
  overlap: OverlapPolicy;
  jitterSeconds: number;
  missed: MissedPolicy;
  paused: boolean;
}

export interface ScheduleRecord extends ScheduleDefinition {
  tenantId: string;
  /** The next slot not yet decided (epoch ms). */
  nextRunAtMs: number;
  /** The last slot that fired. */
  lastRunAtMs: number | null;
  lastTaskId: string | null;
  /** A slot claimed (next_run_at already advanced) whose task is not confirmed yet. */
  pendingSlotMs: number | null;
  lastError: string | null;
  createdAtMs: number;
  updatedAtMs: number;
}

/** The storage port of schedules (one implementation per engine). */
export interface ScheduleStore {
  get(tenantId: string, name: string): Promise<ScheduleRecord | null>;
  list(tenantId: string): Promise<ScheduleRecord[]>;
  count(tenantId: string): Promise<number>;
  /**
   * Insert, or replace an existing schedule's definition, next slot and updated_at (its last run,
   * last task, pending slot, last error and created_at stay).
   */
  put(rec: ScheduleRecord): Promise<void>;
  remove(tenantId: string, name: string): Promise<boolean>;
  /** Unpaused schedules with a slot due at `nowMs` or a pending slot, earliest first. */
  due(nowMs: number, limit: number): Promise<ScheduleRecord[]>;
  /**
   * Decide the slot at `expectNextRunAtMs`: set `nextRunAtMs` (and, when firing, `pendingSlotMs` and
   * `lastRunAtMs`) only if the row still has that next_run_at and no pending slot. True = this
   * caller won the slot.
   */
  advance(tenantId: string, name: string, expectNextRunAtMs: number, next: { nextRunAtMs: number; pendingSlotMs: number | null; lastRunAtMs: number | null }): Promise<boolean>;
  /** Clear the pending slot `slotMs` (if still pending), recording the task or the error. */
  settle(tenantId: string, name: string, slotMs: number, taskId: string | null, error: string | null): Promise<boolean>;
  /** Record an error without touching the slot state. */
  noteError(tenantId: string, name: string, error: string): Promise<void>;
}

export const MAX_SCHEDULE_NAME = 128;
export const MAX_EVERY_SECONDS = 366 * 86400;
export const MAX_JITTER_SECONDS = 3600;
export const MAX_CRON_LENGTH = 256;
/** A slot seen later than this after its time counts as missed (server down, paused loop). */
export const MISFIRE_GRACE_MS = 30_000;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const FIELDS = new Set(['name', 'command', 'payload', 'priority', 'maxAttempts', 'webhook', 'cron', 'everySeconds', 'timezone', 'overlap', 'jitterSeconds', 'missed', 'paused']);

const bad = (message: string, field?: string) => new CodeqError('VALIDATION_FAILED', message, field ? { field } : {});

export function validateScheduleName(name: string): void {
  if (!name || name.length > MAX_SCHEDULE_NAME || !NAME.test(name)) {
    throw bad(`invalid 'name' (1..${MAX_SCHEDULE_NAME} characters: letters, digits, '.', '_', ':', '-'; starting with a letter or digit)`, 'name');
  }
}

/** True when `zone` is an IANA time zone this runtime knows. */
export function validZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Parse and validate an upsert body (400 with a message naming the field, nothing stored). */
export function parseScheduleBody(body: unknown, now: number): ScheduleDefinition {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.getPrototypeOf(body) !== Object.prototype) throw bad('invalid body: expected one JSON object');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.has(k)) throw bad(`invalid body: unknown field "${k}"`, k);
  const str = (k: string): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw bad(`invalid '${k}' (must be a string)`, k);
    return v;
  };
  const int = (k: string): number | undefined => {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(`invalid '${k}' (must be an integer)`, k);
    return v;
  };
  const name = str('name') ?? '';
  validateScheduleName(name);
  const cron = str('cron');
  const everySeconds = int('everySeconds');
  if (cron !== undefined && everySeconds !== undefined) throw bad("give either 'cron' or 'everySeconds', not both", 'cron');
  if (cron === undefined && everySeconds === undefined) throw bad("one of 'cron' or 'everySeconds' is required", 'cron');
  const timezone = str('timezone') ?? 'UTC';
  if (!timezone || !validZone(timezone)) throw bad(`invalid 'timezone' (unknown IANA time zone ${JSON.stringify(timezone)})`, 'timezone');
  if (everySeconds !== undefined && (everySeconds < 1 || everySeconds > MAX_EVERY_SECONDS)) throw bad(`invalid 'everySeconds' (1..${MAX_EVERY_SECONDS}; the shortest interval is 1 s)`, 'everySeconds');
  if (cron !== undefined) {
    if (!cron.trim() || cron.length > MAX_CRON_LENGTH) throw bad(`invalid 'cron' (1..${MAX_CRON_LENGTH} characters)`, 'cron');
    try {
      nextCronSlot(cron, timezone, now);
    } catch (e) {
      throw bad(`invalid 'cron': ${(e as Error).message}`, 'cron');
    }
  }
  const overlap = str('overlap') ?? 'allow';
  if (overlap !== 'skip' && overlap !== 'allow') throw bad(`invalid 'overlap' (skip or allow)`, 'overlap');
  const missed = str('missed') ?? 'fire_once';
  if (missed !== 'fire_once' && missed !== 'skip') throw bad(`invalid 'missed' (fire_once or skip)`, 'missed');
  const jitterSeconds = int('jitterSeconds') ?? 0;
  if (jitterSeconds < 0 || jitterSeconds > MAX_JITTER_SECONDS) throw bad(`invalid 'jitterSeconds' (0..${MAX_JITTER_SECONDS})`, 'jitterSeconds');
  const paused = o['paused'];
  if (paused !== undefined && paused !== null && typeof paused !== 'boolean') throw bad(`invalid 'paused' (must be a boolean)`, 'paused');
  if (typeof o['command'] !== 'string' || !o['command'].trim()) throw bad("'command' is required", 'command');
  if (o['payload'] === undefined || o['payload'] === null) throw bad("'payload' is required (any JSON value but null)", 'payload');
  // The task template goes through the task rules now, so a schedule never stores a task that
  // would be refused when it fires.
  const template = parseCreate({ command: o['command'], payload: o['payload'], priority: o['priority'], maxAttempts: o['maxAttempts'], webhook: o['webhook'] }, now);
  if (template.maxAttempts < 0) throw bad(`invalid 'maxAttempts' (must be >= 0)`, 'maxAttempts');
  if (int('priority') !== undefined && (int('priority')! < 0 || int('priority')! > 9)) throw bad(`invalid 'priority' (0..9)`, 'priority');
  return {
    name,
    command: template.command,
    payload: template.payload,
    priority: template.priority,
    maxAttempts: template.maxAttempts,
    webhook: template.webhook,
    cron: cron ?? null,
    everySeconds: everySeconds ?? null,
    timezone,
    overlap,
    jitterSeconds,
    missed,
    paused: paused === true,
  };
}

// -------------------------------------------------------------------------------------------------
// Slots

function nextCronSlot(cron: string, tz: string, afterMs: number): number {
  return CronExpressionParser.parse(cron, { currentDate: new Date(afterMs), tz }).next().getTime();
}

/** The first slot strictly after `afterMs`. */
export function slotAfter(s: Pick<ScheduleDefinition, 'cron' | 'everySeconds' | 'timezone'>, afterMs: number, anchorMs: number): number {
  if (s.cron !== null) return nextCronSlot(s.cron, s.timezone, afterMs);
  const step = s.everySeconds! * 1000;
  if (afterMs < anchorMs) return anchorMs;
  return anchorMs + (Math.floor((afterMs - anchorMs) / step) + 1) * step;
}

/** The last slot at or before `atMs`, not before `fromMs` (the schedule's next undecided slot). */
export function lastSlotAtOrBefore(s: Pick<ScheduleDefinition, 'cron' | 'everySeconds' | 'timezone'>, atMs: number, fromMs: number): number {
  if (atMs < fromMs) return fromMs;
  if (s.cron !== null) {
    const p = CronExpressionParser.parse(s.cron, { currentDate: new Date(atMs + 1), tz: s.timezone }).prev().getTime();
    return Math.max(p, fromMs);
  }
  const step = s.everySeconds! * 1000;
  return fromMs + Math.floor((atMs - fromMs) / step) * step;
}

/** The first slot of a new (or re-timed, or resumed) schedule, after `now`. */
export function firstSlot(s: Pick<ScheduleDefinition, 'cron' | 'everySeconds' | 'timezone'>, now: number): number {
  if (s.cron !== null) return nextCronSlot(s.cron, s.timezone, now);
  return now + s.everySeconds! * 1000;
}

/** Same timing (so an idempotent re-upsert keeps the schedule's phase and next slot). */
export function sameTiming(a: ScheduleDefinition, b: ScheduleDefinition): boolean {
  return a.cron === b.cron && a.everySeconds === b.everySeconds && a.timezone === b.timezone;
}

/** What to do with the schedule's next undecided slot at `now`. */
export type SlotDecision =
  /** Fire `slotMs` (the key of the task); the next undecided slot becomes `nextRunAtMs`. */
  | { kind: 'fire'; slotMs: number; nextRunAtMs: number; missed: boolean }
  /** Skip the missed slots: the next undecided slot becomes `nextRunAtMs`. */
  | { kind: 'skip-missed'; nextRunAtMs: number }
  | { kind: 'wait' };

/**
 * The decision for a due schedule. A slot is on time while `now - slot <= graceMs`; slots older
 * than that were missed (server down, schedule loop stalled). Missed slots are collapsed: when an
 * on-time slot follows them, they are skipped and the on-time slots fire (that run stands for
 * them); otherwise `fire_once` fires the latest missed slot once and `skip` fires none of them.
 */
export function decide(s: ScheduleRecord, now: number, graceMs = MISFIRE_GRACE_MS): SlotDecision {
  const slot = s.nextRunAtMs;
  if (slot > now) return { kind: 'wait' };
  if (now - slot <= graceMs) return { kind: 'fire', slotMs: slot, nextRunAtMs: slotAfter(s, slot, slot), missed: false };
  const firstOnTime = slotAfter(s, now - graceMs - 1, slot);
  if (firstOnTime <= now) return { kind: 'skip-missed', nextRunAtMs: firstOnTime };
  if (s.missed === 'skip') return { kind: 'skip-missed', nextRunAtMs: firstOnTime };
  const latest = lastSlotAtOrBefore(s, now, slot);
  return { kind: 'fire', slotMs: latest, nextRunAtMs: slotAfter(s, latest, latest), missed: true };
}

/** The idempotency key of a slot's task: the slot itself is the guard against double firing. */
export function slotKey(name: string, slotMs: number): string {
  return `schedule:${name}:${new Date(slotMs).toISOString()}`;
}

/** Deterministic jitter in whole seconds (every replica computes the same delay for a slot). */
export function jitterFor(tenantId: string, name: string, slotMs: number, jitterSeconds: number): number {
  if (jitterSeconds <= 0) return 0;
  const h = createHash('sha256').update(`${tenantId}\u0000${name}\u0000${slotMs}`).digest();
  return h.readUInt32BE(0) % (jitterSeconds + 1);
}
