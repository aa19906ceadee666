/**
 * The operator API of the producer SDK (issue 14; docs/operator-api.md): list and search tasks,
 * cancel, pause/resume commands, the commands overview, dead letters and redrive. Always over the
 * HTTP API: with the gRPC producer transport these calls go to its HTTP fallback (`baseUrl`), like
 * `get` and `waitForResult`.
 */
import { CodeqError } from '@codeq/proto';
import { GrpcProducerTransport } from './transport/grpc-producer-transport.js';
import { HttpTransport } from './transport/http-transport.js';
import type { CallOptions, ProducerTransport } from './transport/transport.js';
import { parseTask, type Task } from './transport/types.js';

/** Status names of the listing: `DELAYED` is a scheduled or backing-off task (its `status` is `PENDING`). */
export type ListStatus = 'PENDING' | 'DELAYED' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

/** Filters of {@link Producer.list} / {@link Producer.listPage}. */
export interface ListFilter {
  command?: string;
  /** One status or several. */
  status?: ListStatus | readonly ListStatus[];
  /** Only dead-lettered tasks. */
  dlq?: boolean;
  /** Tasks created at or after this instant. */
  createdAfter?: Date | string;
  /** Tasks created strictly before this instant. */
  createdBefore?: Date | string;
  /** Page size, 1..500. @default 50 */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  signal?: AbortSignal;
}

/** One page of a listing: newest first; `nextCursor` is null on the last page. */
export interface TaskPage {
  readonly tasks: Task[];
  readonly nextCursor: string | null;
}

/** One row of the commands overview (`GET /admin/commands`). */
export interface CommandOverview {
  readonly command: string;
  readonly ready: number;
  readonly delayed: number;
  readonly inProgress: number;
  readonly dlq: number;
  readonly paused: boolean;
}

/** What a redrive moves: these ids, or the oldest `limit` dead letters of a command. */
export type RedriveSelection = { ids: readonly string[] } | { command: string; limit?: number };

export interface RedriveOutcome {
  readonly redriven: number;
  readonly ids: string[];
}

/** A schedule to create or replace (`admin.schedules.upsert`); exactly one of `cron` / `everySeconds`. */
export interface ScheduleInput {
  /** Unique per tenant: 1..128 of letters, digits, `.`, `_`, `:`, `-`. */
  name: string;
  command: string;
  /** Any JSON value but null: the payload of every task the schedule creates. */
  payload: unknown;
  /** 0..9. @default 0 */
  priority?: number;
  /** 0 = the server's default. */
  maxAttempts?: number;
  webhook?: string;
  /** Cron expression, 5 fields (or 6 with seconds first), evaluated in `timezone`. */
  cron?: string;
  /** Fixed interval in whole seconds (≥ 1), from the moment the schedule is created. */
  everySeconds?: number;
  /** IANA zone of the cron expression. @default 'UTC' */
  timezone?: string;
  /** `skip`: do not fire while the task of the previous slot is unfinished. @default 'allow' */
  overlap?: 'skip' | 'allow';
  /** Each task is delayed by 0..jitterSeconds (deterministic per slot). @default 0 */
  jitterSeconds?: number;
  /** Slots missed while the server was down: `fire_once` (one task for them) or `skip`. @default 'fire_once' */
  missed?: 'fire_once' | 'skip';
  paused?: boolean;
}

/** A stored schedule as the server returns it. */
export interface Schedule {
  readonly name: string;
  readonly command: string;
  readonly payload: unknown;
  readonly priority: number;
  readonly maxAttempts: number;
  readonly webhook: string | null;
  readonly cron: string | null;
  readonly everySeconds: number | null;
  readonly timezone: string;
  readonly overlap: 'skip' | 'allow';
  readonly jitterSeconds: number;
  readonly missed: 'fire_once' | 'skip';
  readonly paused: boolean;
  /** RFC 3339; null while paused. */
  readonly nextRunAt: string | null;
  /** The last slot that fired. */
  readonly lastRunAt: string | null;
  readonly lastTaskId: string | null;
  readonly lastError: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Server-side schedules of the tenant (docs/operator-api.md § Schedules). */
export interface ProducerSchedules {
  /** Create or replace by name. Re-upserting the same timing keeps the next slot (safe at every start). */
  upsert(input: ScheduleInput, opts?: CallOptions): Promise<Schedule>;
  list(opts?: CallOptions): Promise<Schedule[]>;
  /** Throws `CodeqError` `NOT_FOUND` for an unknown name. */
  get(name: string, opts?: CallOptions): Promise<Schedule>;
  /** True when deleted, false when there was no such schedule (so retries are safe). */
  remove(name: string, opts?: CallOptions): Promise<boolean>;
}

/** Admin calls (an admin producer token of the tenant). */
export interface ProducerAdmin {
  /** Stop claims of a command (creates still accepted). Idempotent. */
  pause(command: string, opts?: CallOptions): Promise<{ command: string; paused: boolean }>;
  /** Let claims of a command flow again; parked workers wake. Idempotent. */
  resume(command: string, opts?: CallOptions): Promise<{ command: string; paused: boolean }>;
  /** One row per command of the tenant: ready, delayed, inProgress, dlq, paused. */
  queues(opts?: CallOptions): Promise<CommandOverview[]>;
  readonly dlq: {
    /** One page of dead-lettered tasks (with `lastError`), newest first. */
    list(filter?: Pick<ListFilter, 'command' | 'limit' | 'cursor' | 'signal'>): Promise<TaskPage>;
    /** Move dead letters back to the ready queue (attempts reset); ids not dead-lettered are skipped. */
    redrive(sel: RedriveSelection, opts?: CallOptions): Promise<RedriveOutcome>;
  };
  readonly schedules: ProducerSchedules;
}

type Call = <T>(op: string, fn: () => Promise<T>, signal?: AbortSignal) => Promise<T>;

const API = '/v1/codeq';
const enc = encodeURIComponent;
const time = (t: Date | string) => (t instanceof Date ? t.toISOString() : t);

/** The HTTP transport behind `t` (itself, or the gRPC transport's fallback). */
function httpOf(t: ProducerTransport, op: string): HttpTransport {
  const h = t instanceof GrpcProducerTransport ? t.httpFor(op) : t;
  if (h instanceof HttpTransport) return h;
  throw new CodeqError('VALIDATION_FAILED', `${op} needs the HTTP API: create the producer with baseUrl`);
}

function query(f: ListFilter): string {
  const q = new URLSearchParams();
  if (f.command !== undefined) q.set('command', f.command);
  if (f.status !== undefined) q.set('status', (typeof f.status === 'string' ? [f.status] : f.status).join(','));
  if (f.dlq) q.set('dlq', 'true');
  if (f.createdAfter !== undefined) q.set('createdAfter', time(f.createdAfter));
  if (f.createdBefore !== undefined) q.set('createdBefore', time(f.createdBefore));
  if (f.limit !== undefined) q.set('limit', String(f.limit));
  if (f.cursor) q.set('cursor', f.cursor);
  const s = q.toString();
  return s ? `?${s}` : '';
}

function page(body: unknown): TaskPage {
  const o = (body ?? {}) as { tasks?: unknown; nextCursor?: unknown };
  if (!Array.isArray(o.tasks)) throw new CodeqError('INTERNAL', 'unexpected answer from the server: not a task page');
  return { tasks: o.tasks.map((t) => parseTask(t)), nextCursor: typeof o.nextCursor === 'string' && o.nextCursor ? o.nextCursor : null };
}

function scheduleName(name: string): string {
  if (typeof name !== 'string' || !name.trim()) throw new CodeqError('VALIDATION_FAILED', 'schedule name is required');
  return name;
}

function schedule(body: unknown): Schedule {
  const o = body as Partial<Schedule> | null;
  if (!o || typeof o.name !== 'string' || typeof o.command !== 'string') throw new CodeqError('INTERNAL', 'unexpected answer from the server: not a schedule');
  return o as Schedule;
}

/** The operator calls of a producer, on its transport, with its retry policy. */
export class OperatorCalls {
  readonly admin: ProducerAdmin;

  constructor(
    private readonly transport: ProducerTransport,
    private readonly call: Call,
  ) {
    this.admin = {
      pause: (command, opts) => this.setPaused(command, true, opts),
      resume: (command, opts) => this.setPaused(command, false, opts),
      queues: async (opts = {}) => {
        const body = await this.send<{ commands?: CommandOverview[] }>('queues', 'GET', `${API}/admin/commands`, undefined, opts);
        return Array.isArray(body?.commands) ? body.commands : [];
      },
      dlq: {
        list: async (f = {}) => {
          const q = query({ ...(f.command !== undefined ? { command: f.command } : {}), ...(f.limit !== undefined ? { limit: f.limit } : {}), ...(f.cursor ? { cursor: f.cursor } : {}) });
          return page(await this.send('dlq.list', 'GET', `${API}/admin/dlq${q}`, undefined, f.signal ? { signal: f.signal } : {}));
        },
        redrive: async (sel, opts = {}) => {
          const body = 'ids' in sel ? { ids: [...sel.ids] } : { command: sel.command, ...(sel.limit !== undefined ? { limit: sel.limit } : {}) };
          const out = await this.send<Partial<RedriveOutcome>>('dlq.redrive', 'POST', `${API}/admin/dlq/redrive`, body, opts);
          return { redriven: typeof out?.redriven === 'number' ? out.redriven : 0, ids: Array.isArray(out?.ids) ? out.ids : [] };
        },
      },
      schedules: {
        upsert: async (input, opts = {}) => schedule(await this.send('schedules.upsert', 'POST', `${API}/admin/schedules`, input, opts)),
        list: async (opts = {}) => {
          const body = await this.send<{ schedules?: unknown }>('schedules.list', 'GET', `${API}/admin/schedules`, undefined, opts);
          if (!Array.isArray(body?.schedules)) throw new CodeqError('INTERNAL', 'unexpected answer from the server: not a schedule list');
          return body.schedules.map(schedule);
        },
        get: async (name, opts = {}) => schedule(await this.send('schedules.get', 'GET', `${API}/admin/schedules/${enc(scheduleName(name))}`, undefined, opts)),
        remove: async (name, opts = {}) => {
          try {
            await this.send('schedules.remove', 'DELETE', `${API}/admin/schedules/${enc(scheduleName(name))}`, undefined, opts);
            return true;
          } catch (e) {
            if (CodeqError.is(e) && e.code === 'NOT_FOUND') return false;
            throw e;
          }
        },
      },
    };
  }

  private async send<T>(op: string, method: string, path: string, body: unknown, opts: CallOptions): Promise<T> {
    const http = httpOf(this.transport, op);
    return (await this.call(op, () => http.request(method, path, body, opts), opts.signal)).body as T;
  }

  private async setPaused(command: string, paused: boolean, opts: CallOptions = {}): Promise<{ command: string; paused: boolean }> {
    if (!command.trim()) throw new CodeqError('VALIDATION_FAILED', 'command is required');
    return this.send(paused ? 'pause' : 'resume', 'POST', `${API}/admin/queues/${enc(command)}/${paused ? 'pause' : 'resume'}`, undefined, opts);
  }

  async listPage(filter: ListFilter = {}): Promise<TaskPage> {
    return page(await this.send('list', 'GET', `${API}/tasks${query(filter)}`, undefined, filter.signal ? { signal: filter.signal } : {}));
  }

  /** Every matching task, newest first, page after page (`limit` is the page size). */
  async *list(filter: ListFilter = {}): AsyncGenerator<Task, void, undefined> {
    let cursor = filter.cursor;
    for (;;) {
      const p = await this.listPage({ ...filter, ...(cursor ? { cursor } : {}) });
      yield* p.tasks;
      if (!p.nextCursor) return;
      cursor = p.nextCursor;
    }
  }

  async cancel(id: string, opts: CallOptions = {}): Promise<Task> {
    return parseTask(await this.send('cancel', 'POST', `${API}/tasks/${enc(id)}/cancel`, undefined, opts));
  }
}
