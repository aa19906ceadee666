/**
 * Parked result waiters (long-polls for a task's result), shared by both engines: a waiter
 * leaves its set as soon as it settles (result, deadline, abort), so the map stays bounded.
 */
export class ResultWaiters {
  private readonly byTask = new Map<string, Set<() => void>>();

  constructor(
    private readonly now: () => number,
    /** Longest single park (PostgreSQL re-reads after it in case a notification was lost). */
    private readonly maxParkMs = 2 ** 31 - 1,
  ) {}

  get size(): number {
    return this.byTask.size;
  }

  /** Resolve when `notify(id)` is called, at `deadlineMs` (capped by maxParkMs), or on abort. */
  wait(id: string, deadlineMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      let set = this.byTask.get(id);
      if (!set) this.byTask.set(id, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        const s = this.byTask.get(id);
        if (s) {
          s.delete(done);
          if (!s.size) this.byTask.delete(id);
        }
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, Math.min(deadlineMs - this.now(), this.maxParkMs)));
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  /** True when someone waits for the result of `id`. */
  has(id: string): boolean {
    return this.byTask.has(id);
  }

  /** The result of `id` is stored: wake its waiters. */
  notify(id: string): void {
    const set = this.byTask.get(id);
    if (!set) return;
    this.byTask.delete(id);
    for (const w of set) w();
  }

  /** Wake every waiter (drain, close). */
  wakeAll(): void {
    for (const set of [...this.byTask.values()]) for (const w of [...set]) w();
  }
}
