/**
 * Schedules (issue 17 item 4; ADR 0008): CRUD per tenant, and the loop that turns due slots into
 * tasks. Each slot is decided by one compare-and-set on the schedule row (next_run_at advanced,
 * pending_slot set), then its task is created through TasksService (every task rule applies) with
 * the idempotency key `schedule:<name>:<slotISO>`, then the pending slot is settled. A crash or a
 * failed create between the two leaves the slot pending: the next tick (here or on another
 * replica) creates it again, and the key returns the same task. Time comes from the injected clock.
 */
import { parseCreate } from '../../domain/requests.js';
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { Counter } from 'prom-client';
import { CodeqError } from '@codeq/proto/errors';
import { CLOCK, LOGGER, SCHEDULE_STORE, TASK_STORE, type Clock } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import { formatTime } from '../../domain/time.js';
import type { TaskStore } from '../../domain/task-store.js';
import { isTerminal } from '../../domain/task.js';
import {
  decide,
  firstSlot,
  jitterFor,
  parseScheduleBody,
  sameTiming,
  slotKey,
  validateScheduleName,
  type ScheduleRecord,
  type ScheduleStore,
} from '../../domain/schedule.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { TasksService } from '../tasks/tasks.service.js';

/** Most schedules one tenant may hold. */
export const MAX_SCHEDULES_PER_TENANT = 1000;
/** Real-time period of the loop (slot decisions use the injected clock). */
const TICK_MS = 1000;
/** Due schedules handled per tick (the rest wait for the next tick). */
const DUE_BATCH = 200;
/** Decisions taken for one schedule within one tick (catching up on-time slots). */
const MAX_STEPS = 64;
/**
 * On PostgreSQL a replica that does not hold the maintenance lock leaves due slots to the leader
 * for this long (fewer wasted attempts); past it any replica takes them (the guard stays the CAS).
 */
const FOLLOWER_DELAY_MS = 5000;

export interface ScheduleJson {
  name: string;
  command: string;
  payload: unknown;
  priority: number;
  maxAttempts: number;
  webhook: string | null;
  cron: string | null;
  everySeconds: number | null;
  timezone: string;
  overlap: string;
  jitterSeconds: number;
  missed: string;
  paused: boolean;
  nextRunAt: string | null;
  lastRunAt: string | null;
  lastTaskId: string | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

export function scheduleToJson(s: ScheduleRecord): ScheduleJson {
  return {
    name: s.name,
    command: s.command,
    payload: JSON.parse(s.payload) as unknown,
    priority: s.priority,
    maxAttempts: s.maxAttempts,
    webhook: s.webhook,
    cron: s.cron,
    everySeconds: s.everySeconds,
    timezone: s.timezone,
    overlap: s.overlap,
    jitterSeconds: s.jitterSeconds,
    missed: s.missed,
    paused: s.paused,
    nextRunAt: s.paused ? null : formatTime(s.nextRunAtMs),
    lastRunAt: s.lastRunAtMs === null ? null : formatTime(s.lastRunAtMs),
    lastTaskId: s.lastTaskId,
    lastError: s.lastError,
    createdAt: formatTime(s.createdAtMs),
    updatedAt: formatTime(s.updatedAtMs),
  };
}

@Injectable()
export class SchedulesService implements OnModuleInit, OnModuleDestroy {
  readonly fired: Counter<'missed'>;
  readonly skipped: Counter<'reason'>;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    @Inject(SCHEDULE_STORE) private readonly store: ScheduleStore,
    @Inject(TASK_STORE) private readonly tasksStore: TaskStore,
    @Inject(TasksService) private readonly tasks: TasksService,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(MetricsService) metrics: MetricsService,
  ) {
    const registers = [metrics.registry];
    this.fired = new Counter({ name: 'codeq_schedule_fired_total', help: 'Schedule slots that created a task (missed="true": a collapsed run of missed slots).', labelNames: ['missed'], registers });
    this.skipped = new Counter({ name: 'codeq_schedule_skipped_total', help: 'Schedule slot decisions that created no task (reason: overlap, missed).', labelNames: ['reason'], registers });
  }

  onModuleInit(): void {
    const loop = () => {
      this.timer = setTimeout(() => {
        void this.tick().finally(() => {
          if (!this.stopped) loop();
        });
      }, TICK_MS);
      this.timer.unref();
    };
    loop();
  }

  onModuleDestroy(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  // -----------------------------------------------------------------------------------------------
  // CRUD

  async upsert(tenantId: string, body: unknown): Promise<{ schedule: ScheduleRecord; created: boolean }> {
    const now = this.clock.now();
    const def = parseScheduleBody(body, now);
    const old = await this.store.get(tenantId, def.name);
    if (!old && (await this.store.count(tenantId)) >= MAX_SCHEDULES_PER_TENANT) {
      throw new CodeqError('VALIDATION_FAILED', `too many schedules (at most ${MAX_SCHEDULES_PER_TENANT} per tenant); delete one first`, { limit: MAX_SCHEDULES_PER_TENANT });
    }
    // Same timing and still running: keep the phase and the next slot (re-registering a schedule at
    // every application start changes nothing). New timing, or resumed: the next slot after now.
    const keep = old && sameTiming(old, def) && !old.paused;
    const rec: ScheduleRecord = {
      ...def,
      tenantId,
      nextRunAtMs: keep ? old.nextRunAtMs : firstSlot(def, now),
      lastRunAtMs: old?.lastRunAtMs ?? null,
      lastTaskId: old?.lastTaskId ?? null,
      pendingSlotMs: old?.pendingSlotMs ?? null,
      lastError: old?.lastError ?? null,
      createdAtMs: old?.createdAtMs ?? now,
      updatedAtMs: now,
    };
    await this.store.put(rec);
    return { schedule: rec, created: !old };
  }

  async list(tenantId: string): Promise<ScheduleRecord[]> {
    return this.store.list(tenantId);
  }

  async get(tenantId: string, name: string): Promise<ScheduleRecord> {
    validateScheduleName(name);
    const s = await this.store.get(tenantId, name);
    if (!s) throw new CodeqError('NOT_FOUND', `schedule not found: ${name}`, { name });
    return s;
  }

  async remove(tenantId: string, name: string): Promise<void> {
    validateScheduleName(name);
    if (!(await this.store.remove(tenantId, name))) throw new CodeqError('NOT_FOUND', `schedule not found: ${name}`, { name });
  }

  // -----------------------------------------------------------------------------------------------
  // The loop

  /**
   * Decide every due slot at the clock's current time. Concurrent calls share a run; a call made
   * while a run is under way runs once more after it (so it sees the clock as it is now).
   */
  tick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.runOnce();
        } while (this.again && !this.stopped);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'schedule tick failed');
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  private async runOnce(): Promise<void> {
    if (this.stopped || !this.tasksStore.healthy()) return;
    const now = this.clock.now();
    const leader = (this.tasksStore as { isLeader?: () => boolean }).isLeader;
    const follower = typeof leader === 'function' && !leader.call(this.tasksStore);
    const due = await this.store.due(follower ? now - FOLLOWER_DELAY_MS : now, DUE_BATCH);
    for (const s of due) {
      if (this.stopped) return;
      if (follower && s.pendingSlotMs !== null && s.pendingSlotMs > now - FOLLOWER_DELAY_MS) continue;
      try {
        await this.runSchedule(s, now);
      } catch (e) {
        this.log.warn({ tenantId: s.tenantId, schedule: s.name, err: (e as Error).message }, 'schedule step failed');
      }
    }
  }

  private async runSchedule(initial: ScheduleRecord, now: number): Promise<void> {
    let s: ScheduleRecord | null = initial;
    for (let step = 0; s && step < MAX_STEPS; step++) {
      if (s.pendingSlotMs !== null) {
        if (!(await this.createSlotTask(s, s.pendingSlotMs))) return; // retried next tick
      } else {
        if (s.paused) return;
        const d = decide(s, now);
        if (d.kind === 'wait') return;
        if (d.kind === 'skip-missed') {
          if (await this.store.advance(s.tenantId, s.name, s.nextRunAtMs, { nextRunAtMs: d.nextRunAtMs, pendingSlotMs: null, lastRunAtMs: null })) {
            this.skipped.inc({ reason: 'missed' });
            this.log.info({ tenantId: s.tenantId, schedule: s.name, nextRunAt: formatTime(d.nextRunAtMs) }, 'schedule skipped missed slots');
          }
        } else if (s.overlap === 'skip' && (await this.previousRunning(s))) {
          if (await this.store.advance(s.tenantId, s.name, s.nextRunAtMs, { nextRunAtMs: d.nextRunAtMs, pendingSlotMs: null, lastRunAtMs: null })) {
            this.skipped.inc({ reason: 'overlap' });
          }
        } else if (await this.store.advance(s.tenantId, s.name, s.nextRunAtMs, { nextRunAtMs: d.nextRunAtMs, pendingSlotMs: d.slotMs, lastRunAtMs: d.slotMs })) {
          const done = await this.createSlotTask({ ...s, pendingSlotMs: d.slotMs }, d.slotMs, d.missed);
          if (!done) return;
        }
      }
      s = await this.store.get(initial.tenantId, initial.name);
    }
  }

  /** The task of the last fired slot exists and has not finished. */
  private async previousRunning(s: ScheduleRecord): Promise<boolean> {
    if (!s.lastTaskId) return false;
    const t = await this.tasksStore.get(s.tenantId, s.lastTaskId);
    return t !== null && !isTerminal(t.status);
  }

  /**
   * Create the task of a claimed slot (idempotent: a retry or another replica gets the same task)
   * and settle the slot. False when the create failed and should be retried.
   */
  private async createSlotTask(s: ScheduleRecord, slotMs: number, missed = false): Promise<boolean> {
    const delay = jitterFor(s.tenantId, s.name, slotMs, s.jitterSeconds);
    const body: Record<string, unknown> = {
      command: s.command,
      payload: JSON.parse(s.payload) as unknown,
      priority: s.priority,
      maxAttempts: s.maxAttempts,
      idempotencyKey: slotKey(s.name, slotMs),
      ...(s.webhook ? { webhook: s.webhook } : {}),
      ...(delay > 0 ? { delaySeconds: delay } : {}),
    };
    let taskId: string;
    try {
      taskId = (await this.tasks.create(s.tenantId, parseCreate(body, this.clock.now()))).id;
    } catch (e) {
      const msg = (e as Error).message;
      const permanent = CodeqError.is(e) && !e.spec.retryable && e.code !== 'INTERNAL';
      this.log.warn({ tenantId: s.tenantId, schedule: s.name, slot: formatTime(slotMs), err: msg, permanent }, 'schedule could not create its task');
      if (permanent) await this.store.settle(s.tenantId, s.name, slotMs, null, `${formatTime(slotMs)}: ${msg}`);
      else await this.store.noteError(s.tenantId, s.name, `${formatTime(slotMs)}: ${msg}`).catch(() => undefined);
      return permanent;
    }
    if (await this.store.settle(s.tenantId, s.name, slotMs, taskId, null)) this.fired.inc({ missed: missed ? 'true' : 'false' });
    return true;
  }
}
