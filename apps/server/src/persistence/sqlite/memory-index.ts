/**
 * The memory indexes of the embedded engine, rebuilt at start: ready FIFOs per (tenant, command,
 * priority), a heap of delayed tasks and a heap of leases, counters per queue, paused commands and
 * the parked long-poll waiters (woken directly). Memory holds only what ordering, routing and expiry
 * need (issue 12 item 6): a MemTask per live task. Payloads and every other column stay on disk.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { dueAt } from '../../domain/rules.js';
import type { ExpiredLease, PausedCommand, QueueCounts, QueueDepth } from '../../domain/task-store.js';
import { isTerminal, LOCATIONS, MAX_PRIORITY, type Location, type TaskRecord } from '../../domain/task.js';
import { nextCommand } from '../round-robin.js';
import { Deque, MinHeap } from '../structures.js';

/**
 * What memory keeps of a live (non-terminal) task: enough to order, route and expire it. Index
 * entries (ready FIFOs, heaps) point at the MemTask they were made for: a replaced one makes them stale.
 */
export interface MemTask {
  id: string;
  tenantId: string;
  commandKey: string;
  command: string;
  priority: number;
  location: Location;
  /** FIFO position in the ready index (ties in the heaps). */
  seq: number;
  /** Due time: visible_at of a delayed task, lease_until of a leased one, else 0. */
  at: number;
  leaseId: string | null;
}

/** Columns loaded into MemTasks at start-up, in the order read (raw rows). */
const MEM_COLUMNS = ['id', 'tenant_id', 'command_key', 'command', 'priority', 'location', 'seq', 'visible_at', 'lease_until', 'lease_id'] as const;
/** One canonical string per location, so a million MemTasks share them. */
const LOCATION_OF = new Map<string, Location>(LOCATIONS.map((l) => [l, l]));

function dueOf(t: { location: Location; visibleAtMs: number | null; leaseUntilMs: number | null }): number {
  if (t.location === 'DELAYED_ZSET') return t.visibleAtMs ?? 0;
  if (t.location === 'INPROG_SET') return t.leaseUntilMs ?? 0;
  return 0;
}

interface Waiter {
  done: boolean;
  resolve: () => void;
  /** Queues this waiter is parked on (it leaves all of them when it settles). */
  queues: Queue[];
}

interface Queue extends QueueCounts {
  /** False while the queue exists only because a worker waits on it. */
  named: boolean;
  tenantId: string;
  commandKey: string;
  command: string;
  ready: Deque<MemTask>[];
  /** Parked long-polls, oldest first; a waiter leaves as soon as it settles (issue 12 item 7). */
  waiters: Set<Waiter>;
}

export class MemoryIndex {
  /** Non-terminal tasks: only their MemTask (issue 12 item 6). */
  readonly live = new Map<string, MemTask>();
  private readonly queues = new Map<string, Queue>();
  private readonly delayed = new MinHeap();
  private readonly leases = new MinHeap();
  /** Paused commands (queue key → spelling), a copy of table paused_commands. */
  readonly paused = new Map<string, PausedCommand>();
  /** Per tenant, the command the last claimed task came from (round-robin across commands). */
  private readonly lastServed = new Map<string, string>();
  private seqCounter = 0;

  constructor(
    /** A delayed task becomes due at `at`: make sure promotion runs by then. */
    private readonly armDelay: (at: number) => void,
    /** A lease expires at `at`. */
    private readonly armLease: (at: number) => void,
  ) {}

  queueKey(tenantId: string, commandKey: string): string {
    return `${tenantId}\u0000${commandKey}`;
  }

  /** Rebuild every index from the database (start-up and reload). Returns the live tasks loaded. */
  load(db: BetterSqlite3.Database): number {
    this.clear();
    // `seq` orders only live tasks (a task entering a ready index gets a new one): their maximum
    // is enough, and the partial index answers it without a scan of finished tasks.
    const max = db.prepare(`SELECT max(seq) AS m FROM tasks WHERE terminal_at IS NULL`).get() as { m: number | null };
    this.seqCounter = max.m ?? 0;
    let n = 0;
    const cols = MEM_COLUMNS.map((c) => `"${c}"`).join(', ');
    const rows = db.prepare(`SELECT ${cols} FROM tasks WHERE terminal_at IS NULL ORDER BY seq`).raw(true);
    // Queues by tenant then command key: no key string is built per row.
    const byTenant = new Map<string, Map<string, Queue>>();
    for (const r of rows.iterate() as IterableIterator<unknown[]>) {
      const [id, tenantId, commandKey, command, priority, location, seq, visibleAt, leaseUntil, leaseId] = r as [string, string, string, string, number, string, number, number | null, number | null, string | null];
      // Rows of one queue share its strings.
      let qs = byTenant.get(tenantId);
      if (!qs) byTenant.set(tenantId, (qs = new Map<string, Queue>()));
      let q = qs.get(commandKey);
      if (!q) qs.set(commandKey, (q = this.queue(tenantId, commandKey, command)));
      const loc = LOCATION_OF.get(location) ?? 'NONE';
      const m: MemTask = {
        id, tenantId: q.tenantId, commandKey: q.commandKey, command: command === q.command ? q.command : command, priority, location: loc, seq,
        at: loc === 'DELAYED_ZSET' ? (visibleAt ?? 0) : loc === 'INPROG_SET' ? (leaseUntil ?? 0) : 0, leaseId,
      };
      this.live.set(id, m);
      this.index(m, false, q);
      n++;
    }
    const dlq = db
      .prepare(`SELECT tenant_id, command_key, min(command) AS command, count(*) AS n FROM tasks WHERE location = 'DLQ_SET' GROUP BY tenant_id, command_key`)
      .all() as { tenant_id: string; command_key: string; command: string; n: number }[];
    for (const d of dlq) this.queue(d.tenant_id, d.command_key, d.command).dlq += d.n;
    for (const r of db.prepare(`SELECT tenant_id, command_key, command FROM paused_commands`).all() as { tenant_id: string; command_key: string; command: string }[]) {
      this.paused.set(this.queueKey(r.tenant_id, r.command_key), { tenantId: r.tenant_id, commandKey: r.command_key, command: r.command });
    }
    const d = this.delayed.peek();
    if (d) this.armDelay(d.at);
    const l = this.leases.peek();
    if (l) this.armLease(l.at);
    return n;
  }

  /** Forget everything (waiters are woken). */
  clear(): void {
    this.wakeEverybody();
    this.queues.clear();
    this.live.clear();
    this.delayed.clear();
    this.leases.clear();
    this.paused.clear();
  }

  private queue(tenantId: string, commandKey: string, command: string): Queue {
    const key = this.queueKey(tenantId, commandKey);
    let q = this.queues.get(key);
    if (!q) {
      q = {
        named: false,
        tenantId,
        commandKey,
        command,
        ready: Array.from({ length: MAX_PRIORITY + 1 }, () => new Deque<MemTask>()),
        readyByPriority: new Array<number>(MAX_PRIORITY + 1).fill(0),
        delayed: 0,
        inProgress: 0,
        dlq: 0,
        waiters: new Set<Waiter>(),
      };
      this.queues.set(key, q);
    }
    return q;
  }

  /** Account for `t` in the indexes of its current location (and push its index entry). */
  private index(t: MemTask, wake = true, queue?: Queue): void {
    const q = queue ?? this.queue(t.tenantId, t.commandKey, t.command);
    if (!q.named) {
      q.named = true;
      q.command = t.command;
    }
    switch (t.location) {
      case 'PENDING_LIST':
        q.ready[t.priority]!.push(t);
        q.readyByPriority[t.priority]!++;
        if (wake) this.wakeOne(q);
        break;
      case 'DELAYED_ZSET':
        q.delayed++;
        this.delayed.push({ at: dueAt(t.at), id: t.id, seq: t.seq, ref: t });
        if (wake) this.armDelay(dueAt(t.at));
        break;
      case 'INPROG_SET':
        q.inProgress++;
        this.leases.push({ at: t.at, id: t.id, seq: t.seq, ref: t });
        if (wake) this.armLease(t.at);
        break;
      case 'DLQ_SET':
        q.dlq++;
        break;
      case 'NONE':
        break;
    }
  }

  /** Remove `t` from the counters of its location (index entries are invalidated lazily by seq). */
  unindex(t: Pick<MemTask, 'tenantId' | 'commandKey' | 'command' | 'location' | 'priority'>): void {
    const q = this.queue(t.tenantId, t.commandKey, t.command);
    if (!q.named) {
      q.named = true;
      q.command = t.command;
    }
    switch (t.location) {
      case 'PENDING_LIST':
        q.readyByPriority[t.priority]!--;
        break;
      case 'DELAYED_ZSET':
        q.delayed--;
        break;
      case 'INPROG_SET':
        q.inProgress--;
        break;
      case 'DLQ_SET':
        q.dlq--;
        break;
      case 'NONE':
        break;
    }
  }

  /** Replace a record with its next state in the indexes and counters (`next.seq` may be renewed). */
  apply(prev: TaskRecord | null, next: TaskRecord): void {
    if (prev && !isTerminal(prev.status)) this.unindex(prev);
    if (prev && isTerminal(prev.status) && prev.location === 'DLQ_SET') this.unindex(prev);
    // `seq` is the FIFO position in the ready index; only entering it assigns a new one.
    if (!isTerminal(next.status) && (next.location === 'PENDING_LIST' || next.location === 'DELAYED_ZSET')) next.seq = ++this.seqCounter;
    const mem = this.memOf(next);
    if (!isTerminal(next.status)) this.live.set(next.id, mem);
    else this.live.delete(next.id);
    this.index(mem);
    if (isTerminal(next.status)) this.dropQueueOf(next);
  }

  /** The MemTask of a record, sharing tenant and command strings with its queue. */
  private memOf(t: TaskRecord): MemTask {
    const q = this.queue(t.tenantId, t.commandKey, t.command);
    return {
      id: t.id, tenantId: q.tenantId, commandKey: q.commandKey, command: t.command === q.command ? q.command : t.command,
      priority: t.priority, location: t.location, seq: t.seq, at: dueOf(t), leaseId: t.leaseId,
    };
  }

  dropQueueOf(t: Pick<TaskRecord, 'tenantId' | 'commandKey'>): void {
    const q = this.queues.get(this.queueKey(t.tenantId, t.commandKey));
    if (q) this.dropIfEmpty(q);
  }

  /** A queue with no task and no waiter is forgotten (issue 12 item 7: bounded memory). */
  private dropIfEmpty(q: Queue): void {
    if (q.waiters.size || q.delayed || q.inProgress || q.dlq || q.readyByPriority.some((n) => n > 0)) return;
    const key = this.queueKey(q.tenantId, q.commandKey);
    if (this.queues.get(key) === q) this.queues.delete(key);
  }

  // ---------------------------------------------------------------------------------------------
  // Claims and long-poll waiters

  /**
   * Take up to `count` ready tasks of the tenant off the FIFOs of `commandKeys` (ADR 0007): the
   * highest ready priority across the commands first; among the commands ready at that priority,
   * the one after the tenant's last served command (round-robin); FIFO within. Returns their ids.
   */
  pick(tenantId: string, commandKeys: readonly string[], count: number): string[] {
    const queues: Queue[] = [];
    for (const key of new Set(commandKeys)) {
      const q = this.queues.get(this.queueKey(tenantId, key));
      if (q && !this.paused.has(q.tenantId + '\u0000' + q.commandKey)) queues.push(q);
    }
    const order = queues.map((q) => q.commandKey);
    // Claiming only removes tasks, so the top ready priority never rises during this loop.
    const picked: string[] = [];
    let last = this.lastServed.get(tenantId);
    for (let p = MAX_PRIORITY; p >= 0 && picked.length < count; p--) {
      const ready = new Map<string, Queue>();
      for (const q of queues) if (this.liveHead(q.ready[p]!)) ready.set(q.commandKey, q);
      while (ready.size && picked.length < count) {
        const key = nextCommand(ready, last, order)!;
        const q = ready.get(key)!;
        picked.push(q.ready[p]!.shift()!.id);
        last = key;
        if (!this.liveHead(q.ready[p]!)) ready.delete(key);
      }
    }
    if (last !== undefined) this.lastServed.set(tenantId, last);
    return picked;
  }

  /** Drops stale entries off the head of a ready FIFO; true when a claimable task heads it. */
  private liveHead(fifo: Deque<MemTask>): boolean {
    for (let e = fifo.peek(); e; e = fifo.peek()) {
      if (this.live.get(e.id) === e && e.location === 'PENDING_LIST') return true;
      fifo.shift();
    }
    return false;
  }

  /** Park a long-poll on the queues of `commandKeys`; `settle` is called once it is woken. */
  park(tenantId: string, commandKeys: readonly string[], resolve: () => void): () => void {
    const w: Waiter = { done: false, queues: [], resolve };
    for (const key of new Set(commandKeys)) {
      const q = this.queue(tenantId, key, key);
      q.waiters.add(w);
      w.queues.push(q);
    }
    return () => this.settleWaiter(w);
  }

  private wakeOne(q: Queue): void {
    for (const w of q.waiters) {
      this.settleWaiter(w);
      return;
    }
  }

  /** Wake every waiter of one queue (a resumed command). */
  wakeQueue(tenantId: string, commandKey: string): void {
    const q = this.queues.get(this.queueKey(tenantId, commandKey));
    if (q) for (const w of [...q.waiters]) this.settleWaiter(w);
  }

  wakeEverybody(): void {
    for (const q of [...this.queues.values()]) for (const w of [...q.waiters]) this.settleWaiter(w);
  }

  /** Resolve a waiter and take it off every queue it waits on (dropping queues left empty). */
  private settleWaiter(w: Waiter): void {
    if (w.done) return;
    w.done = true;
    for (const q of w.queues) {
      q.waiters.delete(w);
      this.dropIfEmpty(q);
    }
    w.resolve();
  }

  // ---------------------------------------------------------------------------------------------
  // Timers: due delayed tasks, expired leases

  /** Ids of the delayed tasks due at `now`, taken off the heap. */
  takeDue(now: number): string[] {
    const due: string[] = [];
    for (let e = this.delayed.peek(); e && e.at <= now; e = this.delayed.peek()) {
      this.delayed.pop();
      const t = this.live.get(e.id);
      if (!t || t !== e.ref || t.location !== 'DELAYED_ZSET') continue;
      due.push(t.id);
    }
    return due;
  }

  nextDueAt(): number | undefined {
    return this.delayed.peek()?.at;
  }

  /** Leases that expired at `now`, taken off the heap. */
  takeExpired(now: number): ExpiredLease[] {
    const expired: ExpiredLease[] = [];
    for (let e = this.leases.peek(); e && e.at <= now; e = this.leases.peek()) {
      this.leases.pop();
      const t = this.live.get(e.id);
      if (!t || t !== e.ref || t.location !== 'INPROG_SET' || !t.leaseId) continue;
      expired.push({ tenantId: t.tenantId, taskId: t.id, leaseId: t.leaseId });
    }
    return expired;
  }

  nextExpiryAt(): number | undefined {
    return this.leases.peek()?.at;
  }

  // ---------------------------------------------------------------------------------------------
  // Counts

  counts(tenantId: string, commandKey: string): QueueCounts {
    const q = this.queues.get(this.queueKey(tenantId, commandKey));
    if (!q) return { readyByPriority: new Array<number>(MAX_PRIORITY + 1).fill(0), delayed: 0, inProgress: 0, dlq: 0 };
    return { readyByPriority: [...q.readyByPriority], delayed: q.delayed, inProgress: q.inProgress, dlq: q.dlq };
  }

  depths(): QueueDepth[] {
    // Queues that exist only because a worker waits on them are not listed.
    return [...this.queues.values()].filter((q) => q.named).map((q) => ({
      tenantId: q.tenantId,
      commandKey: q.commandKey,
      command: q.command,
      readyByPriority: [...q.readyByPriority],
      delayed: q.delayed,
      inProgress: q.inProgress,
      dlq: q.dlq,
    }));
  }

  /** The spelling of a queue's command, if the queue is known. */
  commandOf(tenantId: string, commandKey: string): string | undefined {
    return this.queues.get(this.queueKey(tenantId, commandKey))?.command;
  }

  stats(): { live: number; queues: number; waiters: number; diskOnlyChars: number } {
    let waiters = 0;
    for (const q of this.queues.values()) waiters += q.waiters.size;
    // Characters of payloads, webhook URLs and error texts held by the memory records (none: item 6).
    let diskOnlyChars = 0;
    for (const t of this.live.values() as IterableIterator<Partial<TaskRecord>>) diskOnlyChars += (t.payload?.length ?? 0) + (t.webhook?.length ?? 0) + (t.error?.length ?? 0) + (t.lastError?.length ?? 0);
    return { live: this.live.size, queues: this.queues.size, waiters, diskOnlyChars };
  }
}
