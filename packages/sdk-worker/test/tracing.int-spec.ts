/**
 * Tracing end to end (issue 17 item 5): with an OpenTelemetry SDK registered in the test process
 * (in-memory exporter, AsyncLocalStorage context manager) and in the spawned server (preload
 * fixtures/otel-server-preload.mjs, a JSON-lines exporter), one submit → claim → handler run shows
 * producer → server → worker spans in ONE trace, over HTTP and over the gRPC streams.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { context, trace, SpanKind, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createProducer, type Producer } from '@codeq/sdk-producer';
import { api, startServer, TOKEN, waitFor, type TestServer } from '@codeq/testkit';
import { createWorker, type TransportKind } from '../src/index.js';

interface ServerSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  traceState: string | null;
  attributes: Record<string, unknown>;
  scope: string;
}

const preload = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'otel-server-preload.mjs')).href;
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let tracer: Tracer;
let server: TestServer;
let tmp: string;
let spansFile: string;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  tracer = trace.getTracer('codeq-tracing-test');
  tmp = await mkdtemp(join(tmpdir(), 'codeq-tracing-'));
  spansFile = join(tmp, 'server-spans.jsonl');
  server = await startServer({ env: { NODE_OPTIONS: `--import ${preload}`, CODEQ_TEST_SPANS_FILE: spansFile } });
});
afterAll(async () => {
  await server?.dispose();
  await provider.shutdown();
  trace.disable();
  context.disable();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function serverSpans(taskId: string): ServerSpan[] {
  if (!existsSync(spansFile)) return [];
  return readFileSync(spansFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ServerSpan)
    .filter((s) => s.attributes['messaging.message.id'] === taskId);
}

const localSpan = (name: string): ReadableSpan | undefined => exporter.getFinishedSpans().find((s) => s.name === name);

describe.each<[TransportKind]>([['http'], ['grpc']])('tracing over %s', (kind) => {
  it('producer submit → server create/claim/result → worker process (and the handler’s own span) share one trace', async () => {
    const cmd = `trace.${kind}`;
    exporter.reset();
    const producer: Producer = createProducer(kind === 'grpc' ? { grpcAddress: server.producerAddress, baseUrl: server.url, token: TOKEN } : { baseUrl: server.url, token: TOKEN });
    let seenInHandler: { traceId: string; spanId: string } | undefined;
    const worker = createWorker({
      ...(kind === 'grpc' ? { grpcAddress: server.workerAddress } : { baseUrl: server.url }),
      token: TOKEN,
      commands: [cmd],
      handler: (task) => {
        const active = trace.getActiveSpan()?.spanContext();
        if (active) seenInHandler = { traceId: active.traceId, spanId: active.spanId };
        tracer.startActiveSpan('user.work', (s) => s.end()); // the handler's own span nests under codeq.process
        return { ok: (task.payloadJson as { n: number }).n };
      },
    }).start();

    let taskId = '';
    await tracer.startActiveSpan('test.root', async (root) => {
      taskId = (await producer.submit(cmd, { n: 7 })).id;
      root.end();
    });
    const res = await producer.waitForResult(taskId, { timeoutMs: 30_000 });
    await worker.stop();
    await producer.close();
    expect(res.result).toMatchObject({ status: 'COMPLETED', result: { ok: 7 } });

    // The test process: root → codeq.submit (PRODUCER) … codeq.process (CONSUMER) → user.work.
    const root = localSpan('test.root')!;
    const submit = localSpan(`codeq.submit ${cmd}`)!;
    const process = localSpan(`codeq.process ${cmd}`)!;
    const user = exporter.getFinishedSpans().filter((s) => s.name === 'user.work').pop()!;
    expect(submit).toBeDefined();
    expect(process).toBeDefined();
    const traceId = root.spanContext().traceId;
    const submitId = submit.spanContext().spanId;
    expect(submit.kind).toBe(SpanKind.PRODUCER);
    expect(submit.spanContext().traceId).toBe(traceId);
    expect(submit.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(submit.attributes).toMatchObject({ 'messaging.system': 'codeq', 'messaging.destination.name': cmd, 'messaging.message.id': taskId });
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(process.spanContext().traceId).toBe(traceId);
    expect(process.parentSpanContext).toMatchObject({ traceId, spanId: submitId, isRemote: true });
    expect(process.attributes).toMatchObject({ 'messaging.message.id': taskId, 'codeq.outcome': 'complete' });
    expect(seenInHandler).toEqual({ traceId, spanId: process.spanContext().spanId });
    expect(user.spanContext().traceId).toBe(traceId);
    expect(user.parentSpanContext?.spanId).toBe(process.spanContext().spanId);

    // The stored trace context: the task carries the submit span's traceparent.
    const stored = (await api(server.url, 'GET', `/tasks/${taskId}`)).body as { traceParent?: string };
    expect(stored.traceParent).toBe(`00-${traceId}-${submitId}-01`);

    // The server process: create, claim and result spans, each a child of the submit span.
    await waitFor(() => serverSpans(taskId).length >= 3, 10_000, 'server spans');
    const spans = serverSpans(taskId);
    const byOp = (op: string) => spans.find((s) => s.name === `codeq.${op} ${cmd}`);
    for (const op of ['create', 'claim', 'result']) {
      const s = byOp(op);
      expect({ op, span: s && { traceId: s.traceId, parentSpanId: s.parentSpanId, kind: s.kind, scope: s.scope } }).toEqual({ op, span: { traceId, parentSpanId: submitId, kind: SpanKind.SERVER, scope: '@codeq/server' } });
      expect(typeof s!.attributes['codeq.engine.commit_ms']).toBe('number');
      expect(s!.attributes['codeq.engine.commit_ms']).toBeGreaterThanOrEqual(0);
      expect(s!.attributes['codeq.tenant_id']).toBe('acme');
    }
    expect(byOp('create')!.attributes['codeq.created']).toBe(true);
    expect(byOp('result')!.attributes['codeq.result.status']).toBe('COMPLETED');
  }, 90_000);
});

/** Submits one task per root span concurrently (coalesced into one batch) and checks each stored trace context. */
async function expectOwnTraces(producer: Producer, cmd: string): Promise<void> {
  const ids: { traceId: string; id: string }[] = [];
  await Promise.all(
    [1, 2, 3].map((n) =>
      tracer.startActiveSpan(`root.${cmd}.${n}`, async (root) => {
        const t = await producer.submit(cmd, { n });
        ids.push({ traceId: root.spanContext().traceId, id: t.id });
        root.end();
      }),
    ),
  );
  await producer.close();
  const submits = exporter.getFinishedSpans().filter((s) => s.name === `codeq.submit ${cmd}`);
  expect(new Set(ids.map((i) => i.traceId)).size).toBe(3);
  for (const i of ids) {
    const s = submits.find((x) => x.attributes['messaging.message.id'] === i.id)!;
    expect(s.spanContext().traceId).toBe(i.traceId);
    const stored = (await api(server.url, 'GET', `/tasks/${i.id}`)).body as { traceParent?: string };
    expect(stored.traceParent).toBe(`00-${i.traceId}-${s.spanContext().spanId}-01`);
  }
}

describe('trace context details', () => {
  it('coalesced submits keep their own traces over gRPC (CreateTaskBatch)', async () => {
    await expectOwnTraces(createProducer({ grpcAddress: server.producerAddress, token: TOKEN, batching: { lingerMs: 20 } }), 'trace.grpc.batch');
  }, 60_000);

  it('submitMany gives every item its own submit span, stored with the item', async () => {
    const producer = createProducer({ baseUrl: server.url, token: TOKEN });
    let out: Awaited<ReturnType<Producer['submitMany']>> = [];
    await tracer.startActiveSpan('root.many', async (root) => {
      out = await producer.submitMany([
        { command: 'trace.many', payload: { n: 1 } },
        { command: 'trace.many', payload: { n: 2 } },
      ]);
      root.end();
    });
    await producer.close();
    const spans = exporter.getFinishedSpans().filter((s) => s.name === 'codeq.submit trace.many');
    expect(out.every((r) => r.ok)).toBe(true);
    for (const r of out) {
      const id = r.ok ? r.task.id : '';
      const s = spans.find((x) => x.attributes['messaging.message.id'] === id)!;
      expect(s.parentSpanContext?.spanId).toBe(localSpan('root.many')!.spanContext().spanId);
      expect((await api(server.url, 'GET', `/tasks/${id}`)).body).toMatchObject({ traceParent: `00-${s.spanContext().traceId}-${s.spanContext().spanId}-01` });
    }
  }, 60_000);

  it('carries tracestate through the task, and coalesced submits keep their own traces (HTTP batch)', async () => {
    await expectOwnTraces(createProducer({ baseUrl: server.url, token: TOKEN, batching: { lingerMs: 20 } }), 'trace.batch');

    // A raw create with traceparent + tracestate headers: both are stored and come back on claim.
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const r = await fetch(`${server.url}/v1/codeq/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', traceparent: tp, tracestate: 'congo=t61rcWkgMzE' },
      body: JSON.stringify({ command: 'trace.raw', payload: {} }),
    });
    expect(r.status).toBe(202);
    const created = (await r.json()) as { id: string; traceParent?: string; traceState?: string };
    expect(created).toMatchObject({ traceParent: tp, traceState: 'congo=t61rcWkgMzE' });
    const claimed = await api(server.url, 'POST', '/tasks/claim', { commands: ['trace.raw'] });
    expect(claimed.body).toMatchObject({ id: created.id, traceParent: tp, traceState: 'congo=t61rcWkgMzE' });
    await waitFor(() => serverSpans(created.id).some((s) => s.name === 'codeq.claim trace.raw'), 10_000, 'claim span');
    const claimSpan = serverSpans(created.id).find((s) => s.name === 'codeq.claim trace.raw')!;
    expect(claimSpan).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', parentSpanId: 'b7ad6b7169203331', traceState: 'congo=t61rcWkgMzE' });
  }, 60_000);
});
