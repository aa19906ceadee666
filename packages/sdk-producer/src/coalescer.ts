/**
 * Submit coalescing: concurrent `submit()` calls issued in the same turn of the event loop (or
 * within `lingerMs`) travel as one batch request, while every caller keeps its own promise, its
 * own error, its own idempotency key and its own retry budget.
 *
 * - Items keep their submission order inside a batch; a batch holds at most `maxBatch` items.
 * - A batch of one item is sent with the single-item call (`send1`), so a lone submit is exactly
 *   the request it was without coalescing.
 * - A failure of the whole request (network, 503, a stream that broke mid-batch) retries every
 *   item of it with its own backoff; a per-item error settles (or retries) that item only. A
 *   batch the server refuses as too large (413) is split in halves until the parts fit.
 *   Idempotency keys are fixed by the caller before the first attempt, so a retry of a batch the
 *   server had partly or fully committed creates nothing twice.
 * - An aborted `signal` removes an item that was not sent yet (also while it waits for a retry)
 *   and rejects its caller; an item already on the wire is rejected at once and its later
 *   outcome is ignored (the server may still create it, as for an aborted single request).
 */
import { CodeqError } from '@codeq/proto';
import { abortReason, isAbortError, isRetryable, toCodeqError } from './transport/errors.js';
import { log, type Logger } from './transport/logger.js';
import { backoffMs, type RetryPolicy } from './transport/retry.js';

/** Options of submit coalescing (`createProducer({ batching })`). */
export interface BatchingOptions {
  /**
   * How long the first queued submit waits for others before its batch is sent. 0 sends what
   * was submitted in the current turn of the event loop (next `setImmediate`). @default 0
   */
  lingerMs?: number;
  /** Most submits in one batch request (HTTP caps it at 100). @default 100 (HTTP), 500 (gRPC) */
  maxBatch?: number;
}

/** Outcome of one item of a batch call, in input order. */
export type ItemOutcome<O> = { readonly value: O; readonly error?: undefined } | { readonly value?: undefined; readonly error: CodeqError };

export interface CoalescerOptions<I, O> {
  /** Sends many items as one request; resolves with one outcome per item, in order. */
  sendMany(items: readonly I[]): Promise<ItemOutcome<O>[]>;
  /** Sends a single item (a batch of one). */
  sendOne(item: I): Promise<O>;
  lingerMs: number;
  maxBatch: number;
  retry: RetryPolicy;
  logger?: Logger | undefined;
  /** Name in log lines. */
  op?: string;
}

interface Pending<I, O> {
  readonly input: I;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (v: O) => void;
  readonly reject: (e: unknown) => void;
  /** Attempts made so far. */
  attempts: number;
  /** queued: waiting for a flush; waiting: in a retry backoff; sent: on the wire; done: settled. */
  state: 'queued' | 'waiting' | 'sent' | 'done';
  retryTimer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
}

export class Coalescer<I, O> {
  private queue: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private closed = false;
  private readonly inflight = new Set<Promise<void>>();
  private readonly waiting = new Set<Pending<I, O>>();

  constructor(private readonly opts: CoalescerOptions<I, O>) {}

  /** Queues one item; resolves with its own outcome. */
  submit(input: I, signal?: AbortSignal): Promise<O> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.closed) return Promise.reject(new CodeqError('UNAVAILABLE', 'producer is closed', { closed: true }));
    return new Promise<O>((resolve, reject) => {
      const p: Pending<I, O> = { input, signal, resolve, reject, attempts: 0, state: 'queued', retryTimer: undefined, onAbort: undefined };
      if (signal) {
        p.onAbort = () => this.abort(p);
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.enqueue(p);
    });
  }

  /** Items queued or waiting for a retry (not yet on the wire). */
  get queued(): number {
    return this.queue.length + this.waiting.size;
  }

  private enqueue(p: Pending<I, O>): void {
    p.state = 'queued';
    this.queue.push(p);
    if (this.queue.length >= this.opts.maxBatch) return this.flush();
    if (this.timer || this.immediate) return;
    if (this.opts.lingerMs > 0) this.timer = setTimeout(() => this.flush(), this.opts.lingerMs);
    else this.immediate = setImmediate(() => this.flush());
  }

  private settle(p: Pending<I, O>, err: unknown, value?: O): void {
    if (p.state === 'done') return;
    p.state = 'done';
    if (p.retryTimer) clearTimeout(p.retryTimer);
    this.waiting.delete(p);
    if (p.onAbort) p.signal?.removeEventListener('abort', p.onAbort);
    if (err !== undefined) p.reject(err);
    else p.resolve(value as O);
  }

  private abort(p: Pending<I, O>): void {
    if (p.state === 'done') return;
    if (p.state === 'queued') {
      const i = this.queue.indexOf(p);
      if (i >= 0) this.queue.splice(i, 1);
    }
    this.settle(p, abortReason(p.signal!));
  }

  /** Sends everything queued, in order, as batches of at most maxBatch. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      const run = this.send(batch);
      this.inflight.add(run);
      void run.finally(() => this.inflight.delete(run));
    }
  }

  private async send(batch: Pending<I, O>[]): Promise<void> {
    if (!batch.length) return;
    for (const p of batch) {
      p.state = 'sent';
      p.attempts++;
    }
    let outcomes: ItemOutcome<O>[];
    try {
      if (batch.length === 1) outcomes = [{ value: await this.opts.sendOne(batch[0]!.input) }];
      else {
        outcomes = await this.opts.sendMany(batch.map((p) => p.input));
        if (outcomes.length !== batch.length) throw new CodeqError('INTERNAL', `batch answer has ${outcomes.length} outcomes for ${batch.length} items`);
      }
    } catch (e) {
      const err = isAbortError(e) ? e : toCodeqError(e);
      // A batch whose body is too large for the server (items that were fine one by one) is
      // split in halves and sent again, not counted as an attempt: each caller ends up with the
      // answer its own submit would have had.
      if (batch.length > 1 && CodeqError.is(err) && err.code === 'PAYLOAD_TOO_LARGE') {
        const live = batch.filter((p) => p.state === 'sent');
        for (const p of live) p.attempts--;
        const half = Math.ceil(live.length / 2);
        await Promise.all([this.send(live.slice(0, half)), this.send(live.slice(half))]);
        return;
      }
      // A single-item call rejecting with a request error is that item's own error (validation,
      // 4xx...); for a batch it is the error of every item in it.
      for (const p of batch) this.failed(p, err);
      return;
    }
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.error) this.failed(p, o.error);
      else this.settle(p, undefined, o.value);
    });
  }

  /** Retries `p` after its backoff when the error allows it, else rejects its caller. */
  private failed(p: Pending<I, O>, err: unknown): void {
    if (p.state === 'done') return; // aborted while in flight
    const policy = this.opts.retry;
    const ce = CodeqError.is(err) ? err : undefined;
    if (!ce || this.closed || !isRetryable(ce) || ce.details['closed'] === true || p.attempts >= policy.maxAttempts) return this.settle(p, err);
    const retryAfter = typeof ce.details['retryAfterMs'] === 'number' ? ce.details['retryAfterMs'] : 0;
    const delay = Math.max(backoffMs(policy, p.attempts), Math.min(retryAfter, 60_000));
    log(this.opts.logger, 'debug', 'codeq: retrying', { op: this.opts.op ?? 'submit', attempt: p.attempts, delayMs: delay, code: ce.code, error: ce.message });
    p.state = 'waiting';
    this.waiting.add(p);
    p.retryTimer = setTimeout(() => {
      p.retryTimer = undefined;
      this.waiting.delete(p);
      if (p.state !== 'waiting') return;
      if (this.closed) return this.settle(p, ce);
      // Retries that come due together are coalesced again.
      this.enqueue(p);
    }, delay);
  }

  /**
   * Sends what is queued and waits for the batches on the wire. Items still waiting for a retry
   * are rejected with their last error's kind (`UNAVAILABLE`, closed). Later submits reject.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.flush();
    for (const p of [...this.waiting]) this.settle(p, new CodeqError('UNAVAILABLE', 'producer is closed', { closed: true }));
    await Promise.allSettled([...this.inflight]);
  }
}
