/**
 * Issue 12 items 15–17 against a real server: unserialisable results, capped result retries,
 * handler timeouts, and lease watchdogs that ignore the worker's clock skew.
 */
import { createProducer, type Producer } from '@codeq/sdk-producer';
import { api, serverSuite, startServer, TOKEN, waitFor } from '@codeq/testkit';
import { createWorker, HandlerTimeoutError, LeaseLostError, type TransportKind, type Worker, type WorkerEvent, type WorkerOptions } from '../src/index.js';

  // Leases of 2 s by default, so a worker that does not ask for a lease length gets a short one.
const server = serverSuite({ env: { DEFAULT_LEASE_SECONDS: '2' } });
let producer: Producer;
beforeAll(() => {
  producer = server.atEnd(createProducer({ baseUrl: server.url, token: TOKEN }), (p) => p.close());
});
/** Workers are stopped (deadline 0) after each test. */
const track = (w: Worker): Worker => server.afterEachTest(w, (x) => x.stop({ deadlineMs: 0 }));

const TEN_MINUTES = 10 * 60_000;

describe.each<TransportKind>(['http', 'grpc'])('worker robustness over %s', (mode) => {
  function worker<C extends string>(opts: Omit<WorkerOptions<C>, 'baseUrl' | 'token' | 'transport' | 'grpcAddress'>, events: WorkerEvent[] = []): Worker {
    const target = mode === 'grpc' ? { grpcAddress: server.workerAddress, token: TOKEN } : { baseUrl: server.url, token: TOKEN };
    const w = createWorker<C>({ ...target, waitSeconds: 1, onEvent: (e) => events.push(e), ...opts });
    track(w);
    return w.start();
  }
  const cmd = (name: string) => `rb.${mode}.${name}`;

  it('a result that cannot be serialised (BigInt, circular) is recorded FAILED with the reason', async () => {
    const events: WorkerEvent[] = [];
    worker(
      {
        commands: [cmd('unser')],
        handler: (t) => {
          if ((t.payloadJson as { kind: string }).kind === 'bigint') return { n: 10n };
          const o: Record<string, unknown> = { a: 1 };
          o['self'] = o;
          return o;
        },
      },
      events,
    );
    const a = await producer.submit(cmd('unser'), { kind: 'bigint' });
    const b = await producer.submit(cmd('unser'), { kind: 'circular' });
    const ra = await producer.waitForResult(a.id, { timeoutMs: 15_000 });
    const rb = await producer.waitForResult(b.id, { timeoutMs: 15_000 });
    expect(ra.result.status).toBe('FAILED');
    expect(ra.result.error).toMatch(/^result not serialisable: .*BigInt/);
    expect(rb.result.status).toBe('FAILED');
    expect(rb.result.error).toMatch(/^result not serialisable: .*circular/i);
    // Recorded once, no retries: the task ended at its first attempt.
    expect((await producer.get(a.id)).attempts).toBe(1);
    await waitFor(() => events.filter((e) => e.type === 'failed').length === 2);
  });

  it('a handler that never settles is aborted with HandlerTimeoutError, nacked, redelivered, and its slot freed', async () => {
    const events: WorkerEvent[] = [];
    const reasons: unknown[] = [];
    worker(
      {
        commands: [cmd('hang')],
        concurrency: 1,
        leaseSeconds: 30,
        nackDelaySeconds: 0,
        handlerTimeoutMs: (t) => ((t.payloadJson as { hang?: boolean }).hang ? 700 : undefined),
        handler: (t, ctx) => {
          if (ctx.attempt === 1 && (t.payloadJson as { hang?: boolean }).hang) {
            ctx.signal.addEventListener('abort', () => reasons.push(ctx.signal.reason));
            return new Promise(() => undefined); // never settles, ignores the abort
          }
          return { attempt: ctx.attempt };
        },
      },
      events,
    );
    const t = await producer.submit(cmd('hang'), { hang: true });
    const r = await producer.waitForResult(t.id, { timeoutMs: 20_000 });
    expect(r.result).toMatchObject({ status: 'COMPLETED', result: { attempt: 2 } });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(HandlerTimeoutError);
    expect(events.find((e) => e.type === 'handler-timeout')).toMatchObject({ taskId: t.id, timeoutMs: 700 });
    expect(events.find((e) => e.type === 'nacked')).toMatchObject({ taskId: t.id, reason: expect.stringMatching(/did not finish within 700 ms/) });
    // The one slot was freed: another task runs although the first handler never settled.
    const other = await producer.submit(cmd('hang'), {});
    expect((await producer.waitForResult(other.id, { timeoutMs: 15_000 })).result.status).toBe('COMPLETED');
  });

  it('a worker clock 10 minutes ahead does not lose leases it keeps renewing', async () => {
    const events: WorkerEvent[] = [];
    worker(
      {
        commands: [cmd('skew.ahead')],
        leaseSeconds: 2,
        now: () => Date.now() + TEN_MINUTES,
        handler: async (_t, ctx) => {
          await new Promise((r) => setTimeout(r, 4000));
          return { aborted: ctx.signal.aborted };
        },
      },
      events,
    );
    const t = await producer.submit(cmd('skew.ahead'), {});
    const r = await producer.waitForResult(t.id, { timeoutMs: 20_000 });
    expect(r.result).toMatchObject({ status: 'COMPLETED', result: { aborted: false } });
    expect(events.filter((e) => e.type === 'lease-lost')).toEqual([]);
  });

  it('with a worker clock 10 minutes behind, a lease that really runs out is still lost on time', async () => {
    const events: WorkerEvent[] = [];
    let reason: unknown;
    const started = Date.now();
    let abortedAfter = 0;
    worker(
      {
        commands: [cmd('skew.behind')],
        // No leaseSeconds: the server's default (2 s here) is taken from the claim answer.
        heartbeat: false,
        now: () => Date.now() - TEN_MINUTES,
        handler: async (_t, ctx) => {
          await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
          reason = ctx.signal.reason;
          abortedAfter = Date.now() - started;
        },
      },
      events,
    );
    const t = await producer.submit(cmd('skew.behind'), {});
    await waitFor(() => events.some((e) => e.type === 'lease-lost'), 15_000);
    expect(reason).toBeInstanceOf(LeaseLostError);
    // Lost after about the 2 s lease, not after the 10 minutes the skewed clock would suggest.
    expect(abortedAfter).toBeLessThan(15_000);
    expect(events.find((e) => e.type === 'lease-lost')).toMatchObject({ taskId: t.id });
  });
});

describe('result retries are capped', () => {
  it('gives up after resultRetry.maxAttempts while the server is down, stops heartbeats, and the task is redelivered', async () => {
    const own = await startServer();
    try {
      const events: WorkerEvent[] = [];
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const w = createWorker({
        baseUrl: own.url,
        token: TOKEN,
        commands: ['rb.cap'],
        leaseSeconds: 3,
        waitSeconds: 1,
        heartbeat: { intervalMs: 300 },
        reconnect: { initialMs: 50, maxMs: 100 },
        resultRetry: { maxAttempts: 3 },
        timeoutMs: 1000,
        onEvent: (e) => events.push(e),
        handler: async (_t, ctx) => {
          if (ctx.attempt > 1) return { attempt: ctx.attempt };
          started();
          await gate;
          return { attempt: 1 };
        },
      });
      track(w);
      w.start();
      const created = await api(own.url, 'POST', '/tasks', { command: 'rb.cap', payload: {} });
      const id = (created.body as { id: string }).id;
      await running;
      await own.stop('SIGKILL');
      release();
      await waitFor(() => events.some((e) => e.type === 'result-gave-up'), 20_000);
      expect(events.find((e) => e.type === 'result-gave-up')).toMatchObject({ taskId: id, outcome: 'complete', attempts: 3 });
      // No heartbeat of that task is attempted after giving up.
      const heartbeatErrors = () => events.filter((e) => e.type === 'error' && e.phase === 'heartbeat' && e.taskId === id).length;
      const before = heartbeatErrors();
      await new Promise((r) => setTimeout(r, 1500));
      expect(heartbeatErrors()).toBe(before);
      // Back up: the lease expires and the task is delivered again, then completes.
      await own.restart();
      await waitFor(async () => {
        const r = await api(own.url, 'GET', `/tasks/${id}`);
        return (r.body as { status?: string }).status === 'COMPLETED';
      }, 25_000);
    } finally {
      await own.dispose();
    }
  }, 60_000);
});
