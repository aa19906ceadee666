import { CodeqError } from '@codeq/proto';
import { parseTask, type ClaimInput, type NackInput, type ResultInput, type Task, type WorkerTransport } from '@codeq/sdk-producer/transport';
import { HandlerTimeoutError, LeaseLostError } from './errors.js';
import { createWorker, toResultObject, type WorkerEvent, type WorkerOptions } from './worker.js';

const down = () => new CodeqError('UNAVAILABLE', 'cannot reach the codeQ server at http://x: connection refused', { network: true, errno: 'ECONNREFUSED' });

/** An in-memory WorkerTransport: the edge the worker talks to, scripted per test. */
class FakeTransport implements WorkerTransport {
  readonly target = 'fake://codeq';
  queue: Task[] = [];
  claimFailures = 0;
  resultFailures = 0;
  nackAnswerLost = false;
  claims = 0;
  results: Array<{ id: string; input: ResultInput }> = [];
  nacks: Array<{ id: string; input: NackInput }> = [];
  nackCalls = 0;
  async claim(_i: ClaimInput, opts: { signal?: AbortSignal } = {}): Promise<Task | null> {
    this.claims++;
    if (this.claimFailures > 0) {
      this.claimFailures--;
      throw down();
    }
    const t = this.queue.shift();
    if (t) return t;
    await new Promise<void>((r) => {
      const timer = setTimeout(r, 20);
      opts.signal?.addEventListener('abort', () => (clearTimeout(timer), r()), { once: true });
    });
    if (opts.signal?.aborted) throw opts.signal.reason;
    return null;
  }
  async submitResult(id: string, input: ResultInput) {
    if (this.resultFailures > 0) {
      this.resultFailures--;
      throw down();
    }
    this.results.push({ id, input });
    return { taskId: id, status: input.status, completedAt: 'now' };
  }
  async nack(id: string, input: NackInput) {
    this.nackCalls++;
    if (this.nackAnswerLost && this.nackCalls === 1) {
      this.nacks.push({ id, input });
      throw down(); // applied, but the answer never arrived
    }
    if (this.nackAnswerLost) throw new CodeqError('LEASE_NOT_HELD', 'lease-mismatch', { httpStatus: 409 });
    this.nacks.push({ id, input });
    return { status: 'requeued' as const, delaySeconds: 5 };
  }
  async heartbeat() {
    return { leaseUntil: new Date(Date.now() + 60_000).toISOString() };
  }
  async abandon() {
    return { status: 'requeued' };
  }
  async close() {}
}

const task = (id: string, payload: unknown = {}, extra: Record<string, unknown> = {}) =>
  parseTask({ id, command: 'c', payload: JSON.stringify(payload), status: 'IN_PROGRESS', attempts: 1, leaseId: `lease-${id}`, leaseUntil: new Date(Date.now() + 60_000).toISOString(), createdAt: 't', updatedAt: 't', ...extra });

const until = async (cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe(toResultObject.name, () => {
  it('keeps plain objects and wraps everything else', () => {
    expect(toResultObject({ a: 1 })).toEqual({ a: 1 });
    expect(toResultObject(undefined)).toEqual({});
    expect(toResultObject(null)).toEqual({});
    expect(toResultObject(3)).toEqual({ value: 3 });
    expect(toResultObject('s')).toEqual({ value: 's' });
    expect(toResultObject([1])).toEqual({ value: [1] });
    const d = new Date(0);
    expect(toResultObject(d)).toEqual({ value: d });
  });
});

describe('createWorker (fake transport)', () => {
  it('backs off while the server is unreachable, reports it once, and resumes', async () => {
    const t = new FakeTransport();
    t.claimFailures = 4;
    t.queue.push(task('a'));
    const events: WorkerEvent[] = [];
    const w = createWorker({ transport: t, commands: ['c'], reconnect: { initialMs: 5, maxMs: 10 }, handler: () => 'ok', onEvent: (e) => events.push(e) }).start();
    await until(() => t.results.length === 1);
    await w.stop();
    expect(events.filter((e) => e.type === 'error')).toHaveLength(1);
    expect(events.find((e) => e.type === 'reconnected')).toBeDefined();
    expect(t.results[0]).toEqual({ id: 'a', input: { status: 'COMPLETED', result: { value: 'ok' }, leaseId: 'lease-a' } });
  });

  it('retries the result submission with the same lease id', async () => {
    const t = new FakeTransport();
    t.resultFailures = 2;
    t.queue.push(task('a'));
    const events: WorkerEvent[] = [];
    const w = createWorker({ transport: t, commands: ['c'], reconnect: { initialMs: 5, maxMs: 10 }, handler: () => ({ x: 1 }), onEvent: (e) => events.push(e) }).start();
    await until(() => events.some((e) => e.type === 'completed'));
    await w.stop();
    expect(t.results).toEqual([{ id: 'a', input: { status: 'COMPLETED', result: { x: 1 }, leaseId: 'lease-a' } }]);
  });

  it('treats lease-mismatch after a nack whose answer was lost as nacked', async () => {
    const t = new FakeTransport();
    t.nackAnswerLost = true;
    t.queue.push(task('a'));
    const events: WorkerEvent[] = [];
    const w = createWorker({
      transport: t,
      commands: ['c'],
      reconnect: { initialMs: 5, maxMs: 10 },
      nackDelaySeconds: 7,
      handler: () => {
        throw new Error('try later');
      },
      onEvent: (e) => events.push(e),
    }).start();
    await until(() => events.some((e) => e.type === 'nacked'));
    await w.stop();
    expect(t.nacks).toEqual([{ id: 'a', input: { reason: 'try later', delaySeconds: 7, leaseId: 'lease-a' } }]);
    expect(events.some((e) => e.type === 'lease-lost')).toBe(false);
  });

  it('ctx.retry nacks with the requested delay; concurrency runs handlers in parallel', async () => {
    const t = new FakeTransport();
    t.queue.push(task('a'), task('b'), task('c'));
    let active = 0;
    let peak = 0;
    const w = createWorker({
      transport: t,
      commands: ['c'],
      concurrency: 3,
      handler: async (tk, ctx) => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 30));
        active--;
        if (tk.id === 'b') ctx.retry({ delaySeconds: 2, reason: 'not yet' });
        return {};
      },
    }).start();
    await until(() => t.results.length === 2 && t.nacks.length === 1);
    await w.stop();
    expect(peak).toBe(3);
    expect(t.nacks[0]).toEqual({ id: 'b', input: { reason: 'not yet', delaySeconds: 2, leaseId: 'lease-b' } });
  });

  it.each([[{ drain: false }], [{ timeoutMs: 50 }]])('stop(%j) aborts the running handler without waiting for drainTimeoutMs and abandons its task', async (opts) => {
    const t = new FakeTransport();
    let abandoned = 0;
    t.abandon = async () => (abandoned++, { status: 'requeued' });
    t.queue.push(task('a'));
    let started = false;
    const w = createWorker({
      transport: t,
      commands: ['c'],
      drainTimeoutMs: 120_000,
      abortGraceMs: 100,
      handler: (_tk, ctx) => {
        started = true;
        return new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)));
      },
    }).start();
    await until(() => started);
    const stopped = await Promise.race([w.stop(opts).then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still draining'), 10_000))]);
    expect(stopped).toBe('stopped');
    expect(abandoned).toBe(1);
  }, 15_000);

  it('validates its options', () => {
    expect(() => createWorker({ baseUrl: 'http://x', token: 't', commands: [], handler: () => ({}) })).toThrow(/commands/);
  });
});

// The worker makes a task's AbortController, notes buffer and context closures only when they
// are used, and runs every lease watchdog on one timer: these check the behaviour did not change.
describe('createWorker: lazy per-task state', () => {
  /**
   * Two tasks on two slots: 'reads' waits for its ctx.signal to abort (and records the reason),
   * 'ignores' never looks at its signal and runs `ignoredMs` (forever when undefined).
   */
  const twoTasks = (settings: Partial<WorkerOptions>, ignoredMs?: number) => {
    const t = new FakeTransport();
    t.queue.push(task('reads'), task('ignores'));
    const reasons: unknown[] = [];
    const events: WorkerEvent[] = [];
    const w = createWorker({
      ...settings,
      transport: t,
      commands: ['c'],
      concurrency: 2,
      handler: async (tk, ctx) => {
        if (tk.id === 'reads') {
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
          reasons.push(ctx.signal.reason);
          return {};
        }
        await new Promise((r) => (ignoredMs === undefined ? undefined : setTimeout(r, ignoredMs)));
        return { late: true };
      },
      onEvent: (e) => events.push(e),
    }).start();
    return { t, w, reasons, events };
  };

  it('handlerTimeoutMs aborts a handler that reads ctx.signal, and nacks one that never reads it', async () => {
    const { t, w, reasons, events } = twoTasks({ handlerTimeoutMs: 100 });
    await until(() => t.nacks.length === 2, 10_000);
    await w.stop({ deadlineMs: 0 });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(HandlerTimeoutError);
    expect(t.nacks.map((n) => n.id).sort()).toEqual(['ignores', 'reads']);
    for (const n of t.nacks) expect(n.input.reason).toMatch(/did not finish within 100 ms/);
    expect(events.filter((e) => e.type === 'handler-timeout')).toHaveLength(2);
    expect(t.results).toEqual([]);
  });

  it('one watchdog ends every unrenewed lease: the signal of a reader aborts with LeaseLostError, no result is sent for either', async () => {
    // 'ignores' outlives its 1 s lease by 0.8 s without reading its signal.
    const { t, w, reasons, events } = twoTasks({ leaseSeconds: 1, heartbeat: false }, 1800);
    await until(() => events.filter((e) => e.type === 'lease-lost').length === 2, 10_000);
    await new Promise((r) => setTimeout(r, 1200)); // the late handler returns meanwhile
    await w.stop();
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(LeaseLostError);
    expect(t.results).toEqual([]);
    expect(events.some((e) => e.type === 'completed')).toBe(false);
  });

  it('a destructured context works (signal, heartbeat, logger, log, progress, fail)', async () => {
    const t = new FakeTransport();
    t.queue.push(task('a'));
    const seen: string[] = [];
    const w = createWorker({
      transport: t,
      commands: ['c'],
      // eslint-disable-next-line @typescript-eslint/unbound-method -- what this test checks: destructured methods keep working
      handler: async (_tk, { signal, heartbeat, logger, log, progress, fail, taskId, attempt, leaseId }) => {
        await heartbeat();
        logger.info('working', { step: 1 });
        log('line');
        progress(50);
        seen.push(`${taskId}/${attempt}/${leaseId}/${signal.aborted}`);
        fail('nope');
      },
    }).start();
    await until(() => t.results.length === 1);
    await w.stop();
    expect(seen).toEqual(['a/1/lease-a/false']);
    expect(t.results[0]).toEqual({ id: 'a', input: { status: 'FAILED', error: 'nope', leaseId: 'lease-a' } });
  });
});
