/**
 * Heartbeat coalescing against the real server: the heartbeats of tasks that run together go out
 * in one burst from one timer, over both wires, and they keep the leases alive.
 */
import { createProducer, HttpTransport, type Producer, type Transport } from '@codeq/sdk-producer';
import { createWorker, GrpcWorkerTransport, type TransportKind, type Worker } from '../src/index.js';
import { startServer, TOKEN, type TestServer } from '@codeq/testkit';

let server: TestServer;
let producer: Producer;
beforeAll(async () => {
  server = await startServer();
  producer = createProducer({ baseUrl: server.url, token: TOKEN });
});
afterAll(async () => {
  await producer?.close();
  await server?.dispose();
});

/** Wraps a real transport: every heartbeat call is recorded with the synchronous burst it was sent in. */
function recordHeartbeats(t: Transport): { bursts: string[][] } {
  const bursts: string[][] = [];
  let open: string[] | null = null;
  const hb = t.heartbeat.bind(t);
  t.heartbeat = (id, input, opts) => {
    if (!open) {
      open = [];
      bursts.push(open);
      queueMicrotask(() => (open = null)); // calls made in the same synchronous run share a burst
    }
    open.push(id);
    return hb(id, input, opts);
  };
  return { bursts };
}

describe.each<TransportKind>(['http', 'grpc'])('heartbeats over %s', (mode) => {
  let worker: Worker | undefined;
  afterEach(async () => {
    await worker?.stop({ deadlineMs: 0 });
    worker = undefined;
  });

  it('tasks running together are renewed together, by one timer, and keep their leases', async () => {
    const command = `hb.${mode}.together`;
    const transport = mode === 'http' ? new HttpTransport({ baseUrl: server.url, token: TOKEN }) : new GrpcWorkerTransport({ address: server.workerAddress, baseUrl: server.url, token: TOKEN });
    const rec = recordHeartbeats(transport);
    const started: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    worker = createWorker({
      transport,
      commands: [command],
      concurrency: 4,
      waitSeconds: 1,
      leaseSeconds: 3,
      heartbeat: { intervalMs: 400 },
      handler: async (t) => {
        started.push(t.id);
        await gate;
        return { ok: true };
      },
    }).start();
    // All four are claimed within one heartbeat's slack of each other (claims are pushed at once).
    const tasks = await Promise.all([0, 1, 2, 3].map((i) => producer.submit(command, { i })));
    const until = Date.now() + 20_000;
    while (rec.bursts.filter((b) => b.length > 0).length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    release();
    const results = await Promise.all(tasks.map((t) => producer.waitForResult(t.id, { timeoutMs: 20_000 })));
    expect(results.every((r) => r.result.status === 'COMPLETED')).toBe(true);
    expect(started.sort()).toEqual(tasks.map((t) => t.id).sort());
    const calls = rec.bursts.flat();
    expect(new Set(calls)).toEqual(new Set(tasks.map((t) => t.id)));
    // Far fewer timer wake-ups than heartbeats: tasks due close together share a burst.
    expect(rec.bursts.length).toBeLessThan(calls.length);
    expect(Math.max(...rec.bursts.map((b) => b.length))).toBeGreaterThan(1);
    await transport.close();
  }, 60_000);
});
