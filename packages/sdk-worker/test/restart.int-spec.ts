/** The worker rides out a server restart: it reconnects by itself and finishes the work. */
import { createProducer } from '@codeq/sdk-producer';
import { api, startServer, TOKEN, waitFor, type TestServer } from '@codeq/testkit';
import { createWorker, type TransportKind, type WorkerEvent } from '../src/index.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.dispose();
});

const cases: Array<[TransportKind, NodeJS.Signals]> = [
  ['http', 'SIGTERM'],
  ['grpc', 'SIGTERM'],
  ['grpc', 'SIGKILL'],
];

describe('worker across a server restart', () => {
  it.each(cases)('over %s keeps an in-flight task, reconnects after %s, and completes tasks submitted after the restart', async (mode, signal) => {
    const slowCmd = `r.${mode}.${signal}.slow`;
    const fastCmd = `r.${mode}.${signal}.fast`;
    const producer = createProducer({ baseUrl: server.url, token: TOKEN, retry: { maxAttempts: 40, initialMs: 100, maxMs: 500 } });
    const events: WorkerEvent[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const worker = createWorker({
      ...(mode === 'grpc' ? { grpcAddress: server.workerAddress } : { baseUrl: server.url }),
      token: TOKEN,
      commands: [slowCmd, fastCmd],
      concurrency: 2,
      leaseSeconds: 20,
      reconnect: { initialMs: 50, maxMs: 300 },
      onEvent: (e) => events.push(e),
      handler: async (t) => {
        if (t.command === slowCmd) {
          started();
          await gate;
        }
        return { handled: t.command };
      },
    }).start();
    try {
      const slow = await producer.submit(slowCmd, {});
      await running;

      await server.stop(signal); // SIGTERM: graceful (streams end with UNAVAILABLE); SIGKILL: a crash
      release(); // the handler finishes while the server is down: the result submission must retry
      await new Promise((r) => setTimeout(r, 500));
      await server.restart();

      const fast = await Promise.all([1, 2, 3].map((n) => producer.submit(fastCmd, { n })));
      const results = await Promise.all([slow, ...fast].map((t) => producer.waitForResult(t.id, { timeoutMs: 15_000 })));
      expect(results.map((r) => r.result.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED']);
      expect(results[0]!.result.result).toEqual({ handled: slowCmd });
      expect(results[0]!.task.attempts).toBe(1); // same delivery: the lease survived the restart
      await waitFor(() => events.some((e) => e.type === 'reconnected'), 5000, 'a reconnected event');
      expect(events.some((e) => e.type === 'lease-lost')).toBe(false);
      await waitFor(() => events.filter((e) => e.type === 'completed').length >= 4, 5000, 'four completed events');
      expect(events.filter((e) => e.type === 'completed')).toHaveLength(4); // each task once
      expect((await api(server.url, 'GET', `/admin/queues/${fastCmd}`)).body).toMatchObject({ ready: 0, inProgress: 0 });
    } finally {
      await worker.stop({ deadlineMs: 1000 });
      await producer.close();
    }
  }, 40_000);
});
