/**
 * Tracing is off unless an OpenTelemetry SDK is registered (issue 17 item 5): with nothing
 * registered in the test process or the server, submit → claim → handler → result works over HTTP
 * and gRPC, nothing is stored as a trace context, and the handler sees no active span. A malformed
 * `traceparent` never fails a create: it is ignored (W3C Trace Context), over HTTP and gRPC.
 */
import { trace } from '@opentelemetry/api';
import { createProducer, GrpcProducerTransport } from '@codeq/sdk-producer';
import { api, startServer, TOKEN, type TestServer } from '@codeq/testkit';
import { createWorker, type TransportKind } from '../src/index.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.dispose();
});

describe.each<[TransportKind]>([['http'], ['grpc']])('no OpenTelemetry SDK registered, over %s', (kind) => {
  it('processes a task; no trace context is stored or delivered, the handler sees no active span', async () => {
    const cmd = `untraced.${kind}`;
    const producer = createProducer(kind === 'grpc' ? { grpcAddress: server.producerAddress, baseUrl: server.url, token: TOKEN } : { baseUrl: server.url, token: TOKEN });
    let seen: { active: boolean; traceParent: string | undefined } | undefined;
    const worker = createWorker({
      ...(kind === 'grpc' ? { grpcAddress: server.workerAddress } : { baseUrl: server.url }),
      token: TOKEN,
      commands: [cmd],
      handler: (task) => {
        seen = { active: trace.getActiveSpan() !== undefined, traceParent: task.traceParent };
        return { done: true };
      },
    }).start();
    const task = await producer.submit(cmd, { a: 1 });
    const res = await producer.waitForResult(task.id, { timeoutMs: 30_000 });
    await worker.stop();
    await producer.close();
    expect(res.result).toMatchObject({ status: 'COMPLETED', result: { done: true } });
    expect(seen).toEqual({ active: false, traceParent: undefined });
    const stored = (await api(server.url, 'GET', `/tasks/${task.id}`)).body as Record<string, unknown>;
    expect(stored['traceParent']).toBeUndefined();
    expect(stored['traceState']).toBeUndefined();
  }, 60_000);
});

describe('malformed trace context is ignored, never refused', () => {
  it('HTTP create and batch with a bad traceparent succeed and store none', async () => {
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${server.url}/v1/codeq${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', traceparent: 'not-a-traceparent', tracestate: 'x=1' },
        body: JSON.stringify(body),
      });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    const one = await post('/tasks', { command: 'bad.trace', payload: {} });
    expect(one.status).toBe(202);
    expect(one.body['traceParent']).toBeUndefined();
    const batch = await post('/tasks/batch', { tasks: [{ command: 'bad.trace', payload: {}, traceParent: '00-zz-yy-01' }, { command: 'bad.trace', payload: {}, traceParent: 42 }] });
    expect(batch.status).toBe(200);
    const results = batch.body['results'] as { task?: Record<string, unknown> }[];
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r.task).toBeDefined();
      expect(r.task!['traceParent']).toBeUndefined();
      expect(r.task!['traceState']).toBeUndefined();
    }
  });

  it('gRPC CreateTask with a bad trace_parent is acknowledged and stores none; a good one is stored', async () => {
    const t = new GrpcProducerTransport({ address: server.producerAddress, token: TOKEN, baseUrl: server.url });
    try {
      const bad = await t.createTask({ command: 'bad.trace.grpc', payload: {}, traceParent: '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', traceState: 'a=b' });
      const good = await t.createTask({ command: 'bad.trace.grpc', payload: {}, traceParent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' });
      expect((await api(server.url, 'GET', `/tasks/${bad.id}`)).body['traceParent']).toBeUndefined();
      expect((await api(server.url, 'GET', `/tasks/${good.id}`)).body).toMatchObject({ traceParent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' });
    } finally {
      await t.close();
    }
  });
});
