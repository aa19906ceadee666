/**
 * Cancellation (issue 14) over both wires: a producer cancels a task a handler is running; the
 * next heartbeat (or the result) answers 409 CANCELLED; the worker aborts ctx.signal with
 * TaskCancelledError, records nothing, emits `cancelled`; the task ends CANCELLED, not retried.
 * And a paused command hands a running worker nothing until it is resumed (long-polls and streams).
 */
import { createWorker, TaskCancelledError, type TransportKind, type Worker, type WorkerEvent, type WorkerOptions } from '../src/index.js';
import { api, serverSuite, TOKEN, waitFor } from '@codeq/testkit';

const server = serverSuite();
/** Workers are stopped (deadline 0) after each test. */
const track = (w: Worker): Worker => server.afterEachTest(w, (x) => x.stop({ deadlineMs: 0 }));

const target = (mode: TransportKind) => (mode === 'grpc' ? { grpcAddress: server.workerAddress, token: TOKEN } : { baseUrl: server.url, token: TOKEN });

describe.each<TransportKind>(['http', 'grpc'])('cancellation over %s', (mode) => {
  function worker(opts: Omit<WorkerOptions, 'baseUrl' | 'token' | 'transport' | 'grpcAddress'>, events: WorkerEvent[]): Worker {
    const w = createWorker({ ...target(mode), waitSeconds: 1, onEvent: (e) => events.push(e), ...opts });
    track(w);
    return w.start();
  }
  const cmd = (name: string) => `${mode}.${name}`;

  it('a heartbeat answered CANCELLED aborts ctx.signal with TaskCancelledError; nothing is recorded, no retry', async () => {
    const events: WorkerEvent[] = [];
    const reasons: unknown[] = [];
    let runs = 0;
    worker(
      {
        commands: [cmd('c.heartbeat')],
        leaseSeconds: 3,
        heartbeat: { intervalMs: 200 },
        handler: (_t, ctx) =>
          new Promise((_resolve, reject) => {
            runs++;
            ctx.signal.addEventListener('abort', () => {
              reasons.push(ctx.signal.reason);
              reject(ctx.signal.reason as Error);
            });
          }),
      },
      events,
    );
    const t = (await api(server.url, 'POST', '/tasks', { command: cmd('c.heartbeat'), payload: {} })).body as { id: string };
    await waitFor(() => events.some((e) => e.type === 'claimed'));
    const c = await api(server.url, 'POST', `/tasks/${t.id}/cancel`);
    expect(c.body).toMatchObject({ status: 'IN_PROGRESS', cancelRequested: true });
    await waitFor(() => events.some((e) => e.type === 'cancelled'), 10_000, 'cancelled event');
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(TaskCancelledError);
    expect((reasons[0] as TaskCancelledError).taskId).toBe(t.id);
    const r = await api(server.url, 'GET', `/tasks/${t.id}/result`);
    expect(r.body.result).toMatchObject({ status: 'CANCELLED' });
    expect(r.body.task.status).toBe('CANCELLED');
    // nothing recorded after the cancel (no nack, no result), and never run again
    await new Promise((res) => setTimeout(res, 1500));
    const mine = events.filter((e) => 'taskId' in e && e.taskId === t.id).map((e) => e.type);
    expect(mine).toEqual(['claimed', 'cancelled']);
    expect(runs).toBe(1);
  });

  it('a paused command hands the running worker nothing until it is resumed', async () => {
    const events: WorkerEvent[] = [];
    const command = cmd('c.paused');
    expect((await api(server.url, 'POST', `/admin/queues/${command}/pause`)).body).toEqual({ command, paused: true });
    worker({ commands: [command], handler: () => ({ ok: true }) }, events);
    const t = (await api(server.url, 'POST', '/tasks', { command, payload: {} })).body as { id: string };
    await new Promise((res) => setTimeout(res, 1500));
    expect(events.filter((e) => e.type === 'claimed')).toEqual([]);
    expect((await api(server.url, 'GET', `/tasks/${t.id}`)).body.status).toBe('PENDING');
    await api(server.url, 'POST', `/admin/queues/${command}/resume`);
    await waitFor(() => events.some((e) => e.type === 'completed'), 10_000, 'completed after resume');
    expect((await api(server.url, 'GET', `/tasks/${t.id}`)).body.status).toBe('COMPLETED');
  });

  it('a result refused with CANCELLED emits `cancelled` and is not retried', async () => {
    const events: WorkerEvent[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    worker({ commands: [cmd('c.result')], heartbeat: false, handler: async () => (await gate, { done: true }) }, events);
    const t = (await api(server.url, 'POST', '/tasks', { command: cmd('c.result'), payload: {} })).body as { id: string };
    await waitFor(() => events.some((e) => e.type === 'claimed'));
    await api(server.url, 'POST', `/tasks/${t.id}/cancel`);
    release();
    await waitFor(() => events.some((e) => e.type === 'cancelled'), 10_000, 'cancelled event');
    expect(events.some((e) => e.type === 'completed' || (e.type === 'error' && e.phase === 'result'))).toBe(false);
    expect((await api(server.url, 'GET', `/tasks/${t.id}`)).body.status).toBe('CANCELLED');
  });
});
