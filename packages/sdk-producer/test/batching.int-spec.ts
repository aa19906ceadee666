/**
 * Submit coalescing against the real server, over both transports: concurrent submit() calls
 * travel as batch creates, every caller gets its own task or error, and a connection cut in the
 * middle of a batch (after the server committed it, before the answer arrived) duplicates nothing.
 */
import { api, startServer, startTcpProxy, TOKEN, waitFor, type TestServer } from '@codeq/testkit';
import { createProducer, GrpcProducerTransport, HttpTransport, type Producer, type Transport } from '../src/index.js';

/** Counts the transport calls a producer makes (the transport itself is the real one). */
function counted<T extends Transport>(t: T): T & { singles: number; batches: number[] } {
  const c = t as T & { singles: number; batches: number[] };
  c.singles = 0;
  c.batches = [];
  const one = t.createTask.bind(t);
  const many = t.createTasks.bind(t);
  c.createTask = (input, opts) => (c.singles++, one(input, opts));
  c.createTasks = (inputs, opts) => (c.batches.push(inputs.length), many(inputs, opts));
  return c;
}

const kinds = ['http', 'grpc'] as const;

describe.each(kinds)('submit coalescing over %s', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  const transportTo = (httpUrl: string, grpcAddress: string): Transport =>
    kind === 'http' ? new HttpTransport({ baseUrl: httpUrl, token: TOKEN }) : new GrpcProducerTransport({ address: grpcAddress, baseUrl: server.url, token: TOKEN });
  const stats = async (command: string) => (await api(server.url, 'GET', `/admin/queues/${command}`)).body as { ready: number };

  it('concurrent submits travel as batches; each caller gets its own task, in order', async () => {
    const t = counted(transportTo(server.url, server.producerAddress));
    const producer = createProducer({ transport: t });
    try {
      const command = `co.${kind}.many`;
      const tasks = await Promise.all(Array.from({ length: 150 }, (_, i) => producer.submit(command, { i })));
      expect(tasks.map((x) => x.payloadJson)).toEqual(Array.from({ length: 150 }, (_, i) => ({ i })));
      expect(new Set(tasks.map((x) => x.id)).size).toBe(150);
      expect(t.singles).toBe(0);
      // HTTP caps a batch at 100; the stream takes up to 500 per CreateTaskBatch.
      expect(t.batches).toEqual(kind === 'http' ? [100, 50] : [150]);
      expect(await stats(command)).toMatchObject({ ready: 150 });
      const stored = await producer.get(tasks[77]!.id);
      expect(stored.payloadJson).toEqual({ i: 77 });
      // A lone submit is still a single create.
      await producer.submit(command, { i: 150 });
      expect(t.singles).toBe(1);
    } finally {
      await producer.close();
      await t.close();
    }
  });

  it('a per-item error reaches only its caller', async () => {
    const producer = createProducer({ transport: transportTo(server.url, server.producerAddress) });
    try {
      const command = `co.${kind}.errors`;
      const res = await Promise.allSettled([
        producer.submit(command, { i: 0 }),
        producer.submit(command, { i: 1 }, { webhook: 'ftp://nope' }),
        producer.submit(command, { i: 2 }),
      ]);
      expect(res.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((res[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'VALIDATION_FAILED', message: 'invalid webhook url' });
      expect(await stats(command)).toMatchObject({ ready: 2 });
    } finally {
      await producer.close();
      await producer.transport.close();
    }
  });

  it('submits that fit one by one but not as one batch body are split, and all succeed', async () => {
    // Three payloads of ~400 KB: each fits the server's 1 MiB body limit (HTTP) / one stream
    // message, together they do not fit one HTTP batch body.
    const big = 'x'.repeat(400_000);
    const t = counted(transportTo(server.url, server.producerAddress));
    const producer = createProducer({ transport: t });
    try {
      const command = `co.${kind}.big`;
      const tasks = await Promise.all([0, 1, 2].map((i) => producer.submit(command, { i, big })));
      expect(tasks.map((x) => (x.payloadJson as { i: number }).i)).toEqual([0, 1, 2]);
      expect(await stats(command)).toMatchObject({ ready: 3 });
    } finally {
      await producer.close();
      await t.close();
    }
  }, 30_000);

  it('batching: false sends every submit on its own', async () => {
    const t = counted(transportTo(server.url, server.producerAddress));
    const producer = createProducer({ transport: t, batching: false });
    try {
      await Promise.all(Array.from({ length: 5 }, (_, i) => producer.submit(`co.${kind}.off`, { i })));
      expect(t.singles).toBe(5);
      expect(t.batches).toEqual([]);
    } finally {
      await producer.close();
      await t.close();
    }
  });

  it('a connection cut in the middle of a batch (committed, answer lost) creates nothing twice', async () => {
    const target = kind === 'http' ? `127.0.0.1:${server.port}` : server.producerAddress;
    const proxy = await startTcpProxy(() => target);
    const producer: Producer = createProducer({
      transport: transportTo(`http://${proxy.address}`, proxy.address),
      retry: { initialMs: 50, maxMs: 200, maxAttempts: 20 },
    });
    try {
      const command = `co.${kind}.cut`;
      await producer.submit(command, { warm: true }); // the connection is open before answers get lost
      proxy.dropResponses = true;
      const pending = Array.from({ length: 120 }, (_, i) => producer.submit(command, { i }));
      await waitFor(async () => (await stats(command)).ready === 121, 15_000, 'the batch committed on the server');
      proxy.cutAll(); // the answers never arrive: a reconnect in the middle of the batch
      proxy.dropResponses = false;
      const tasks = await Promise.all(pending);
      expect(new Set(tasks.map((x) => x.id)).size).toBe(120);
      expect(await stats(command)).toMatchObject({ ready: 121 }); // nothing duplicated
      for (const i of [0, 63, 119]) {
        const stored = (await api(server.url, 'GET', `/tasks/${tasks[i]!.id}`)).body as { payload: string };
        expect(JSON.parse(stored.payload)).toEqual({ i });
      }
    } finally {
      await producer.close();
      await producer.transport.close();
      await proxy.close();
    }
  }, 60_000);
});
