/**
 * The persistence kit's entry point (issue 11 item 1): one call opens the configured engine —
 * the embedded SQLite engine (sqlite/) or the PostgreSQL engine shared by replicas (postgres/) —
 * and hands out the stores the application wires: the task store (the port of
 * domain/task-store.ts), the topic catalog and the schedules, and one `close`.
 */
import type { PersistenceConfig } from '../config/config.js';
import type { ScheduleStore } from '../domain/schedule.js';
import type { TaskStore } from '../domain/task-store.js';
import type { TopicStore } from '../domain/topic.js';
import { PostgresTaskStore } from './postgres/postgres-task-store.js';
import { SqliteTaskStore } from './sqlite/sqlite-task-store.js';

/** An engine's task store, which also serves its catalogs. */
export type EngineStore = TaskStore & { topics(): TopicStore; schedules(): ScheduleStore };

export interface Engine {
  tasks: EngineStore;
  topics: TopicStore;
  schedules: ScheduleStore;
  /** Flush pending writes and close every connection. */
  close(): Promise<void>;
}

export interface EngineDeps {
  /** Time source of the engine's timers (delayed promotion, lease expiry). */
  clock?: { now(): number };
  log?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** The configured engine, not opened yet. */
export function createEngineStore(p: PersistenceConfig, deps: EngineDeps = {}): EngineStore {
  return p.provider === 'postgres'
    ? new PostgresTaskStore({ url: p.url, poolSize: p.poolSize, ...deps })
    : new SqliteTaskStore({ path: p.path, fsyncOnCommit: p.fsyncOnCommit, ...deps });
}

/** Open the configured engine: migrations run, memory indexes are rebuilt, then it serves. */
export async function openEngine(p: PersistenceConfig, deps: EngineDeps = {}): Promise<Engine> {
  const tasks = createEngineStore(p, deps);
  await tasks.open();
  return { tasks, topics: tasks.topics(), schedules: tasks.schedules(), close: () => tasks.close() };
}
