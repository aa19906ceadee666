/** The producer on the gRPC producer stream, against the real server. */
import { api, startServer, startTcpProxy, TOKEN, waitFor, type TestServer } from '@codeq/testkit';
import { CodeqError, createProducer, GrpcProducerTransport, type Producer } from '../src/index.js';

describe('producer over the gRPC stream', () => {
  let server: TestServer;
  let producer: Producer;
  beforeAll(async () => {
    server = await startServer();
    producer = createProducer({ grpcAddress: server.producerAddress, baseUrl: server.url, token: TOKEN, retry: { maxAttempts: 3, initialMs: 20 } });
  });
  afterAll(async () => {
    await producer?.close();
    await server?.dispose();
  });

  it('submits on the stream (the ack carries the id) and reads back over HTTP', async () => {
    expect(producer.transport).toBeInstanceOf(GrpcProducerTransport);
    const t = await producer.submit('g.email', { to: 'a@example.com', n: [1, 2] }, { priority: 7, maxAttempts: 3, webhook: 'http://hooks.local/x' });
    expect(t).toMatchObject({ command: 'g.email', status: 'PENDING', lastKnownLocation: 'PENDING_LIST', priority: 7, maxAttempts: 3, attempts: 0, tenantId: 'acme', payloadJson: { to: 'a@example.com', n: [1, 2] } });
    const stored = await producer.get(t.id);
    expect(stored).toMatchObject({ id: t.id, command: 'g.email', status: 'PENDING', priority: 7, maxAttempts: 3, webhook: 'http://hooks.local/x', payloadJson: { to: 'a@example.com', n: [1, 2] } });
    const later = await producer.submit('g.later', 'x', { delaySeconds: 60 });
    expect(later.lastKnownLocation).toBe('DELAYED_ZSET');
    expect((await producer.get(later.id)).lastKnownLocation).toBe('DELAYED_ZSET');
    const at = await producer.submit('g.later', 1, { runAt: new Date(Date.now() + 3_600_000) });
    expect((await producer.get(at.id)).lastKnownLocation).toBe('DELAYED_ZSET');
  });

  it('deduplicates on the idempotency key', async () => {
    const [a, b] = await Promise.all([producer.submit('g.dedupe', { v: 1 }, { idempotencyKey: 'g-key-1' }), producer.submit('g.dedupe', { v: 1 }, { idempotencyKey: 'g-key-1' })]);
    expect(b.id).toBe(a.id);
    const c = await producer.submit('g.dedupe', { v: 1 }, { idempotencyKey: 'g-key-1' });
    expect(c.id).toBe(a.id);
    expect((await api(server.url, 'GET', '/admin/queues/g.dedupe')).body).toMatchObject({ ready: 1 });
  });

  it('submitMany sends CreateTaskBatches and reports per-item errors in order', async () => {
    const items = Array.from({ length: 1200 }, (_, i) => ({ command: i === 5 ? '   ' : 'g.bulk', payload: { i }, ...(i === 7 ? { webhook: 'ftp://nope' } : {}) }));
    const out = await producer.submitMany(items);
    expect(out).toHaveLength(1200);
    expect(out[5]).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED', message: 'command is required' } });
    expect(out[7]).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED', message: 'invalid webhook url' } });
    expect(out.filter((r) => r.ok)).toHaveLength(1198);
    expect(out[1199]).toMatchObject({ ok: true, task: { command: 'g.bulk', payloadJson: { i: 1199 } } });
    expect((await api(server.url, 'GET', '/admin/queues/g.bulk')).body).toMatchObject({ ready: 1198 });
  });

  it('concurrent submits share the stream and all resolve with distinct ids', async () => {
    const tasks = await Promise.all(Array.from({ length: 300 }, (_, i) => producer.submit('g.concurrent', { i })));
    expect(new Set(tasks.map((t) => t.id)).size).toBe(300);
    expect(tasks.map((t) => (t.payloadJson as { i: number }).i)).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it('waits for a result (over HTTP) of a task submitted on the stream', async () => {
    const t = await producer.submit('g.wait', {});
    const waiting = producer.waitForResult(t.id, { timeoutMs: 10_000 });
    const claimed = await api(server.url, 'POST', '/tasks/claim', { commands: ['g.wait'] });
    await api(server.url, 'POST', `/tasks/${t.id}/result`, { status: 'FAILED', error: 'nope', leaseId: claimed.body.leaseId });
    expect((await waiting).result).toMatchObject({ status: 'FAILED', error: 'nope' });
  });

  it('rejects validation errors with the catalogue code and upstream text, without retrying', async () => {
    await expect(producer.submit('x', {}, { delaySeconds: -1 })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: 'delaySeconds must be >= 0' });
    await expect(producer.submit('x', {}, { runAt: 'not a date' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('a bad token is a typed UNAUTHENTICATED error, not retried', async () => {
    const bad = createProducer({ grpcAddress: server.producerAddress, token: 'wrong' });
    const started = Date.now();
    const err = await bad.submit('x', {}).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(CodeqError.is(err)).toBe(true);
    expect(err).toMatchObject({ code: 'UNAUTHENTICATED', message: 'auth failed: invalid token', details: { grpcStatus: 16 } });
    await bad.close();
  });

  it('reads need baseUrl; a missing grpcAddress or baseUrl is a clear error', async () => {
    const streamOnly = createProducer({ grpcAddress: server.producerAddress, token: TOKEN });
    const t = await streamOnly.submit('g.only', {});
    await expect(streamOnly.get(t.id)).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('pass baseUrl') });
    await streamOnly.close();
    expect(() => createProducer({ token: TOKEN, transport: 'grpc', baseUrl: server.url })).toThrow(/grpcAddress is required/);
    expect(() => createProducer({ token: TOKEN })).toThrow(/baseUrl is required/);
    expect(() => createProducer({ token: TOKEN, grpcAddress: 'no-port' })).toThrow(/invalid gRPC address/);
    // transport: 'http' wins over a grpcAddress.
    const http = createProducer({ token: TOKEN, grpcAddress: server.producerAddress, baseUrl: server.url, transport: 'http' });
    expect(http.transport.target).toBe(server.url);
    await http.close();
  });
});

describe('producer over the gRPC stream across server restarts', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.dispose();
    server = undefined;
  });

  it('an ack lost in a restart is retried with the same key: exactly one task', async () => {
    const s = (server = await startServer());
    const proxy = await startTcpProxy(() => s.producerAddress);
    const producer = createProducer({ grpcAddress: proxy.address, baseUrl: s.url, token: TOKEN, timeoutMs: 10_000, retry: { initialMs: 50, maxMs: 500, maxAttempts: 40 } });
    try {
      await producer.submit('g.restart.warmup', {}); // the stream is open
      proxy.dropResponses = true; // the server commits the next create, its ack never arrives
      const pending = producer.submit('g.restart.once', { order: 42 });
      await waitFor(() => proxy.droppedBytes > 0, 5000, 'the ack was sent');
      await s.restart(); // the old stream dies with the server
      proxy.cutAll();
      proxy.dropResponses = false;
      const task = await pending;
      expect(proxy.accepted).toBeGreaterThanOrEqual(2); // the retry reconnected
      expect((await api(s.url, 'GET', '/admin/queues/g.restart.once')).body).toMatchObject({ ready: 1 });
      expect((await api(s.url, 'GET', `/tasks/${task.id}`)).body).toMatchObject({ id: task.id, payload: '{"order":42}' });
    } finally {
      await producer.close();
      await proxy.close();
    }
  }, 30_000);

  it('creates in flight during a crash (SIGKILL) all complete after the restart, none twice', async () => {
    const s = (server = await startServer());
    const producer = createProducer({ grpcAddress: s.producerAddress, token: TOKEN, retry: { initialMs: 100, maxMs: 500, maxAttempts: 60 } });
    try {
      await producer.submit('g.crash.warmup', {});
      const all = Array.from({ length: 500 }, (_, i) => producer.submit('g.crash', { i }, { idempotencyKey: `crash-${i}` }));
      await new Promise((r) => setImmediate(r));
      await s.stop('SIGKILL');
      setTimeout(() => void s.restart(), 300);
      const tasks = await Promise.all(all);
      expect(new Set(tasks.map((t) => t.id)).size).toBe(500);
      expect((await api(s.url, 'GET', '/admin/queues/g.crash')).body).toMatchObject({ ready: 500 });
    } finally {
      await producer.close();
    }
  }, 30_000);

  it('a submit made while the server is down completes once it is back', async () => {
    const s = (server = await startServer());
    await s.stop();
    const producer = createProducer({ grpcAddress: s.producerAddress, token: TOKEN, retry: { initialMs: 100, maxMs: 400, maxAttempts: 40 } });
    try {
      const pending = producer.submit('g.while.down', { n: 1 });
      setTimeout(() => void s.restart(), 800);
      const task = await pending;
      expect(task.status).toBe('PENDING');
      expect((await api(s.url, 'GET', '/admin/queues/g.while.down')).body).toMatchObject({ ready: 1 });
    } finally {
      await producer.close();
    }
  }, 30_000);

  it('without retries the caller sees UNAVAILABLE with a connection hint', async () => {
    const s = (server = await startServer());
    await s.stop();
    const producer = createProducer({ grpcAddress: s.producerAddress, token: TOKEN, retry: false });
    await expect(producer.submit('x', {})).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      details: { network: true },
      message: `cannot reach the codeQ server at grpc://${s.producerAddress}: connection refused`,
    });
    await producer.close();
  });
});
