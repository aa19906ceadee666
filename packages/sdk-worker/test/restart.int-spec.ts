/** The worker rides out a server restart: it reconnects by itself and finishes the work. */
import { createProducer } from '@codeq/sdk-producer';
import { createWorker, type WorkerEvent } from '../src/index.js';
import { startServer, TOKEN, type TestServer } from './support/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.dispose();
});

describe('worker across a server restart', () => {
  it('keeps an in-flight task, reconnects, and completes tasks submitted after the restart', async () => {
    const producer = createProducer({ baseUrl: server.url, token: TOKEN, retry: { maxAttempts: 40, initialMs: 100, maxMs: 500 } });
    const events: WorkerEvent[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const worker = createWorker({
      baseUrl: server.url,
      token: TOKEN,
      commands: ['r.slow', 'r.fast'],
      concurrency: 2,
      leaseSeconds: 20,
      reconnect: { initialMs: 50, maxMs: 300 },
      onEvent: (e) => events.push(e),
      handler: async (t) => {
        if (t.command === 'r.slow') {
          started();
          await gate;
        }
        return { handled: t.command };
      },
    }).start();
    try {
      const slow = await producer.submit('r.slow', {});
      await running;

      await server.stop(); // SIGTERM: graceful, long-polls are woken
      release(); // the handler finishes while the server is down: the result submission must retry
      await new Promise((r) => setTimeout(r, 500));
      await server.restart();

      const fast = await Promise.all([1, 2, 3].map((n) => producer.submit('r.fast', { n })));
      const results = await Promise.all([slow, ...fast].map((t) => producer.waitForResult(t.id, { timeoutMs: 15_000 })));
      expect(results.map((r) => r.result.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED']);
      expect(results[0]!.result.result).toEqual({ handled: 'r.slow' });
      expect(results[0]!.task.attempts).toBe(1); // same delivery: the lease survived the restart
      expect(events.some((e) => e.type === 'reconnected')).toBe(true);
      expect(events.some((e) => e.type === 'lease-lost')).toBe(false);
    } finally {
      await worker.stop({ deadlineMs: 1000 });
      await producer.close();
    }
  }, 40_000);
});
