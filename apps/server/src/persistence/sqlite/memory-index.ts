/**
 * The memory indexes of the embedded engine, rebuilt at start: ready FIFOs per (tenant, command,
 * priority), a heap of delayed tasks and a heap of leases, counters per queue, paused commands and
 * the parked long-poll waiters (woken directly). Memory holds only what ordering, routing and expiry
 * need (issue 12 item 6), without an object per task: a live task is a slot of the SlotTable (its
 * id as 16 bytes, its location, a version), an entry of a typed ready FIFO or heap holds (slot,
 * version) and is stale once the slot's version moved on. Payloads and every other column stay on
 * disk. About 60 bytes per live task (see docs/architecture.md, ADR 0011).
 */
import type BetterSqlite3 from 'better-sqlite3';
import { dueAt } from '../../domain/rules.js';
import type { ExpiredLease, PausedCommand, QueueCounts, QueueDepth } from '../../domain/task-store.js';
import { isTerminal, LOCATIONS, MAX_PRIORITY, type TaskRecord } from '../../domain/task.js';
import { nextCommand } from '../round-robin.js';
import { SlotDeque, SlotHeap } from '../structures.js';
import { SlotTable } from './slot-table.js';

/** Location codes kept per slot (LOCATIONS index + 1; 0 marks a free slot). */
const [PENDING, DELAYED, INPROG, DLQ] = [1, 2, 3, 4];
const CODE_OF = new Map<string, number>(LOCATIONS.map((l, i) => [l, i + 1]));
const NONE_CODE = CODE_OF.get('NONE')!;

/**
 * Live tasks in seq order (ties: rowid, the order of index tasks_live), a batch after (seq, rowid):
 * raw rows with as few strings as possible (queue key as in queueKey(), location as its code, the
 * lease id only of leased tasks); batches of all() cost less per row than iterate().
 */
const LOAD_SQL = `SELECT id, tenant_id || char(0) || command_key, priority,
    CASE location ${LOCATIONS.map((l, i) => `WHEN '${l}' THEN ${i + 1}`).join(' ')} ELSE ${LOCATIONS.indexOf('NONE') + 1} END, seq,
    CASE location WHEN 'DELAYED_ZSET' THEN visible_at WHEN 'INPROG_SET' THEN lease_until END,
    CASE location WHEN 'INPROG_SET' THEN lease_id END, rowid
  FROM tasks WHERE terminal_at IS NULL AND (seq, rowid) > (?, ?) ORDER BY seq, rowid LIMIT 4096`;
type LoadRow = [string, string, number, number, number, number | null, string | null, number];

/** The lease of an in-progress task (what takeExpired reports). */
interface Lease {
  tenantId: string;
  leaseId: string;
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
  /** Ready FIFO per priority, made on first use. */
  ready: (SlotDeque | undefined)[];
  /** Parked long-polls, oldest first; a waiter leaves as soon as it settles (issue 12 item 7). */
  waiters: Set<Waiter>;
}

export class MemoryIndex {
  /** Non-terminal tasks: a slot each (issue 12 item 6). */
  private readonly slots = new SlotTable();
  /** Lease of each in-progress slot that has one. */
  private readonly leaseOf = new Map<number, Lease>();
  private readonly queues = new Map<string, Queue>();
  private readonly delayed = new SlotHeap();
  private readonly leases = new SlotHeap();
  /** Paused commands (queue key → spelling), a copy of table paused_commands. */
  readonly paused = new Map<string, PausedCommand>();
  /** Per tenant, the command the last claimed task came from (round-robin across commands). */
  private readonly lastServed = new Map<string, string>();
  private seqCounter = 0;
  /** Bumped on every change of a live task: the version its new index entries carry. */
  private versionCounter = 0;

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
    // One read transaction: every batch sees the same snapshot.
    return db.transaction(() => this.loadFrom(db))();
  }

  private loadFrom(db: BetterSqlite3.Database): number {
    this.clear();
    // `seq` orders only live tasks (a task entering a ready index gets a new one): their maximum
    // is enough, and the partial index answers it without a scan of finished tasks.
    const max = db.prepare(`SELECT max(seq) AS m FROM tasks WHERE terminal_at IS NULL`).get() as { m: number | null };
    this.seqCounter = max.m ?? 0;
    const count = db.prepare(`SELECT count(*) AS n FROM tasks WHERE terminal_at IS NULL`).get() as { n: number };
    this.slots.reset(count.n);
    let n = 0;
    const batch = db.prepare(LOAD_SQL).raw(true);
    // The first task of a queue names it (its tenant, command key and command spelling).
    const first = db.prepare(`SELECT tenant_id, command_key, command FROM tasks WHERE rowid = ?`).raw(true);
    for (let rows = batch.all(-Infinity, -Infinity) as LoadRow[]; rows.length; rows = batch.all(rows.at(-1)![4], rows.at(-1)![7]) as LoadRow[]) {
      for (const [id, key, priority, code, seq, at, leaseId, rowid] of rows) {
        let q = this.queues.get(key);
        if (!q || !q.named) {
          const [tenantId, commandKey, command] = first.get(rowid) as [string, string, string];
          q = this.queue(tenantId, commandKey, command);
        }
        this.index(q, q.command, this.track(id, code, q, leaseId), code, priority, seq, at ?? 0, false);
        n++;
      }
    }
    const dlq = db
      .prepare(`SELECT tenant_id, command_key, min(command) AS command, count(*) AS n FROM tasks WHERE location = 'DLQ_SET' GROUP BY tenant_id, command_key`)
      .all() as { tenant_id: string; command_key: string; command: string; n: number }[];
    for (const d of dlq) this.queue(d.tenant_id, d.command_key, d.command).dlq += d.n;
    for (const r of db.prepare(`SELECT tenant_id, command_key, command FROM paused_commands`).all() as { tenant_id: string; command_key: string; command: string }[]) {
      this.paused.set(this.queueKey(r.tenant_id, r.command_key), { tenantId: r.tenant_id, commandKey: r.command_key, command: r.command });
    }
    const d = this.delayed.peekAt();
    if (d !== undefined) this.armDelay(d);
    const l = this.leases.peekAt();
    if (l !== undefined) this.armLease(l);
    return n;
  }

  /** Forget everything (waiters are woken). */
  clear(): void {
    this.wakeEverybody();
    this.queues.clear();
    this.slots.reset();
    this.leaseOf.clear();
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
        ready: new Array<SlotDeque | undefined>(MAX_PRIORITY + 1).fill(undefined),
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

  /** Make `id` a live task at location `code` with a new version (older entries turn stale). */
  private track(id: string, code: number, q: Queue, leaseId: string | null): number {
    const slot = this.slots.acquire(id);
    if (this.slots.tag(slot) === INPROG) this.leaseOf.delete(slot);
    this.slots.set(slot, code, ++this.versionCounter);
    if (code === INPROG && leaseId) this.leaseOf.set(slot, { tenantId: q.tenantId, leaseId });
    return slot;
  }

  /**
   * Account for a task in the counters of location `code` of `q` and, for a live one (`slot` ≥ 0,
   * the slot just tracked), push its index entry. `at`: visible_at of a delayed task, lease_until
   * of a leased one.
   */
  private index(q: Queue, command: string, slot: number, code: number, priority: number, seq: number, at: number, wake = true): void {
    if (!q.named) {
      q.named = true;
      q.command = command;
    }
    switch (code) {
      case PENDING:
        if (slot >= 0) (q.ready[priority] ??= new SlotDeque()).push(slot, this.slots.version(slot));
        q.readyByPriority[priority]!++;
        if (wake) this.wakeOne(q);
        break;
      case DELAYED:
        q.delayed++;
        if (slot >= 0) this.delayed.push(dueAt(at), seq, slot, this.slots.version(slot));
        if (wake) this.armDelay(dueAt(at));
        break;
      case INPROG:
        q.inProgress++;
        if (slot >= 0) this.leases.push(at, seq, slot, this.slots.version(slot));
        if (wake) this.armLease(at);
        break;
      case DLQ:
        q.dlq++;
        break;
    }
  }

  /** Remove `t` from the counters of its location (index entries turn stale by version). */
  unindex(t: Pick<TaskRecord, 'tenantId' | 'commandKey' | 'command' | 'location' | 'priority'>): void {
    const q = this.queue(t.tenantId, t.commandKey, t.command);
    if (!q.named) {
      q.named = true;
      q.command = t.command;
    }
    const code = CODE_OF.get(t.location);
    if (code === PENDING) q.readyByPriority[t.priority]!--;
    else if (code === DELAYED) q.delayed--;
    else if (code === INPROG) q.inProgress--;
    else if (code === DLQ) q.dlq--;
  }

  /** Replace a record with its next state in the indexes and counters (`next.seq` may be renewed). */
  apply(prev: TaskRecord | null, next: TaskRecord): void {
    if (prev && !isTerminal(prev.status)) this.unindex(prev);
    if (prev && isTerminal(prev.status) && prev.location === 'DLQ_SET') this.unindex(prev);
    // `seq` is the FIFO position in the ready index; only entering it assigns a new one.
    if (!isTerminal(next.status) && (next.location === 'PENDING_LIST' || next.location === 'DELAYED_ZSET')) next.seq = ++this.seqCounter;
    const q = this.queue(next.tenantId, next.commandKey, next.command);
    const code = CODE_OF.get(next.location) ?? NONE_CODE;
    let slot = -1;
    if (!isTerminal(next.status)) slot = this.track(next.id, code, q, next.leaseId);
    else this.leaseOf.delete(this.slots.remove(next.id));
    const at = code === DELAYED ? (next.visibleAtMs ?? 0) : code === INPROG ? (next.leaseUntilMs ?? 0) : 0;
    this.index(q, next.command, slot, code, next.priority, next.seq, at);
    if (isTerminal(next.status)) this.dropQueueOf(next);
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
      for (const q of queues) if (this.liveHead(q.ready[p])) ready.set(q.commandKey, q);
      while (ready.size && picked.length < count) {
        const key = nextCommand(ready, last, order)!;
        const q = ready.get(key)!;
        picked.push(this.slots.idOf(q.ready[p]!.shift()));
        last = key;
        if (!this.liveHead(q.ready[p])) ready.delete(key);
      }
    }
    if (last !== undefined) this.lastServed.set(tenantId, last);
    return picked;
  }

  /** Drops stale entries off the head of a ready FIFO; true when a claimable task heads it. */
  private liveHead(fifo: SlotDeque | undefined): boolean {
    if (!fifo) return false;
    for (let slot = fifo.peekSlot(); slot >= 0; slot = fifo.peekSlot()) {
      if (this.slots.version(slot) === fifo.peekVersion() && this.slots.tag(slot) === PENDING) return true;
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
  takeDue(now: number, max = Infinity): string[] {
    const due: string[] = [];
    for (let at = this.delayed.peekAt(); at !== undefined && at <= now && due.length < max; at = this.delayed.peekAt()) {
      const slot = this.delayed.peekSlot();
      const version = this.delayed.peekVersion();
      this.delayed.pop();
      if (this.slots.version(slot) !== version || this.slots.tag(slot) !== DELAYED) continue;
      due.push(this.slots.idOf(slot));
    }
    return due;
  }

  nextDueAt(): number | undefined {
    return this.delayed.peekAt();
  }

  /** Leases that expired at `now`, taken off the heap. */
  takeExpired(now: number, max = Infinity): ExpiredLease[] {
    const expired: ExpiredLease[] = [];
    for (let at = this.leases.peekAt(); at !== undefined && at <= now && expired.length < max; at = this.leases.peekAt()) {
      const slot = this.leases.peekSlot();
      const version = this.leases.peekVersion();
      this.leases.pop();
      const lease = this.leaseOf.get(slot);
      if (this.slots.version(slot) !== version || this.slots.tag(slot) !== INPROG || !lease) continue;
      expired.push({ tenantId: lease.tenantId, taskId: this.slots.idOf(slot), leaseId: lease.leaseId });
    }
    return expired;
  }

  nextExpiryAt(): number | undefined {
    return this.leases.peekAt();
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
    // Characters of payloads, webhook URLs and error texts held in memory: none by construction
    // (item 6: a live task is ids and numbers in typed arrays); kept because it is reported.
    const diskOnlyChars = 0;
    return { live: this.slots.size, queues: this.queues.size, waiters, diskOnlyChars };
  }
}
