/**
 * Full records of recently committed live tasks (issue 13): the create → claim → result cycle
 * reads a task back right after writing it, and this saves that read from disk. Bounded by count
 * and by an estimate of the bytes held (LRU, most recently committed last); it starts empty, so
 * start-up memory is unchanged (issue 12 item 6).
 *
 * Never stale: only the group commit writes it, on the writer's acknowledgement of a batch, in
 * commit order, with the records of that batch (terminal or deleted tasks leave it). Newer,
 * uncommitted states are read from the dirty and in-flight batches before this cache is asked.
 */
import { isTerminal, type TaskRecord } from '../../domain/task.js';

export interface RecordCacheLimits {
  /** Most records held. Default 20,000. */
  maxRecords?: number;
  /** Most bytes held (estimated: UTF-16 text plus a fixed overhead per record). Default 32 MB. */
  maxBytes?: number;
}

/** Fixed cost of a record object and its short strings (ids, status, timestamps), estimated. */
const RECORD_OVERHEAD = 400;

function sizeOf(t: TaskRecord): number {
  return RECORD_OVERHEAD + 2 * (t.payload.length + (t.webhook?.length ?? 0) + (t.error?.length ?? 0) + (t.lastError?.length ?? 0) + (t.traceState?.length ?? 0));
}

export class RecordCache {
  private readonly map = new Map<string, { rec: TaskRecord; bytes: number }>();
  private bytes = 0;
  private readonly maxRecords: number;
  private readonly maxBytes: number;

  constructor(limits: RecordCacheLimits = {}) {
    this.maxRecords = limits.maxRecords ?? 20_000;
    this.maxBytes = limits.maxBytes ?? 32 * 1024 * 1024;
  }

  get size(): number {
    return this.map.size;
  }

  get heldBytes(): number {
    return this.bytes;
  }

  /** The committed record of a task, if held (callers must not mutate it). */
  get(id: string): TaskRecord | undefined {
    return this.map.get(id)?.rec;
  }

  /** A batch was committed: `rec` is the task's state on disk now (null = deleted). */
  committed(id: string, rec: TaskRecord | null): void {
    this.drop(id);
    if (!rec || isTerminal(rec.status)) return;
    const bytes = sizeOf(rec);
    if (bytes > this.maxBytes || this.maxRecords <= 0) return;
    this.map.set(id, { rec, bytes });
    this.bytes += bytes;
    while (this.map.size > this.maxRecords || this.bytes > this.maxBytes) {
      const oldest = this.map.keys().next().value!;
      this.drop(oldest);
    }
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  private drop(id: string): void {
    const e = this.map.get(id);
    if (!e) return;
    this.map.delete(id);
    this.bytes -= e.bytes;
  }
}
