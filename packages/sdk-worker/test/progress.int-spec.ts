/**
 * ctx.progress, ctx.log and ctx.logger against the real server (issue 17 item 3), on both worker
 * transports: values reach GET /tasks/:id and the task log, calls are coalesced, the last value
 * is written before the outcome.
 */
import { createProducer, type Producer } from '@codeq/sdk-producer';
import { HttpTransport, type CallOptions, type ProgressInput } from '@codeq/sdk-producer/transport';
import { startServer, TOKEN, waitFor, type TestServer } from '@codeq/testkit';
import { createWorker, type Worker } from '../src/index.js';

let server: TestServer;
let producer: Producer;
const workers: Worker[] = [];

beforeAll(async () => {
  server = await startServer();
  producer = createProducer({ baseUrl: server.url, token: TOKEN });
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop({ deadlineMs: 0 })));
});
afterAll(async () => {
  await producer?.close();
  await server?.dispose();
});

/** An HTTP transport that counts progress writes (the wire is real). */
class CountingTransport extends HttpTransport {
  progressWrites = 0;
  override async reportProgress(id: string, input: ProgressInput, opts?: CallOptions): Promise<void> {
    this.progressWrites++;
    return super.reportProgress(id, input, opts);
  }
}

const targets = () => ({
  http: { baseUrl: server.url, token: TOKEN },
  grpc: { grpcAddress: server.workerAddress, baseUrl: server.url, token: TOKEN },
});

describe.each(['http', 'grpc'] as const)('over %s', (mode) => {
  it('shows progress while the handler runs and the last value after it; logs reach the task log', async () => {
    const command = `progress.${mode}`;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: { message: string; fields?: Record<string, unknown> }[] = [];
    const w = createWorker({
      ...targets()[mode],
      commands: [command],
      waitSeconds: 1,
      logger: { info: (message, fields) => seen.push({ message, ...(fields ? { fields } : {}) }), debug: (message, fields) => seen.push({ message, ...(fields ? { fields } : {}) }) },
      handler: async (_task, ctx) => {
        ctx.progress({ stage: 'download', pct: 50 });
        ctx.log('downloading', { bytes: 10 });
        await gate;
        ctx.logger.info({ phase: 'upload' }, 'uploading'); // pino style
        ctx.logger.warn('retrying part', { part: 2 }); // message first
        ctx.logger.debug('only local');
        ctx.logger.child({ part: 3 }).error('part failed');
        ctx.progress(100);
        return { ok: true };
      },
    });
    workers.push(w);
    w.start();
    const t = await producer.submit(command, {});
    await waitFor(async () => (await producer.get(t.id)).progress !== undefined, 15_000, 'progress visible');
    expect((await producer.get(t.id)).progress).toEqual({ stage: 'download', pct: 50 });
    release();
    expect((await producer.waitForResult(t.id, { timeoutMs: 15_000 })).result.status).toBe('COMPLETED');
    expect((await producer.get(t.id)).progress).toBe(100);
    const lines = await producer.logs(t.id);
    expect(lines.map((l) => [l.level, l.message])).toEqual([
      ['info', 'downloading {"bytes":10}'],
      ['info', 'uploading {"phase":"upload"}'],
      ['warn', 'retrying part {"part":2}'],
      ['error', 'part failed {"part":3}'],
    ]);
    expect(lines.every((l) => l.attempt === 1 && typeof l.at === 'string')).toBe(true);
    expect((await producer.logs(t.id, { after: lines[1]!.n })).map((l) => l.message)).toEqual(['retrying part {"part":2}', 'part failed {"part":3}']);
    // The worker's own logger got the calls with the task's fields (debug too, which the task log skips).
    const local = seen.filter((s) => s.fields?.['taskId'] === t.id);
    expect(local.map((s) => s.message)).toEqual(expect.arrayContaining(['uploading', 'only local']));
    expect(local.find((s) => s.message === 'uploading')?.fields).toMatchObject({ command, attempt: 1, phase: 'upload' });
  });
});

it('coalesces a tight loop of progress calls into few writes, the latest value winning', async () => {
  const transport = new CountingTransport({ baseUrl: server.url, token: TOKEN });
  const w = createWorker({
    transport,
    commands: ['progress.loop'],
    waitSeconds: 1,
    handler: (_task, ctx) => {
      for (let i = 0; i <= 10_000; i++) ctx.progress(i / 100);
      return {};
    },
  });
  workers.push(w);
  w.start();
  const t = await producer.submit('progress.loop', {});
  expect((await producer.waitForResult(t.id, { timeoutMs: 15_000 })).result.status).toBe('COMPLETED');
  expect((await producer.get(t.id)).progress).toBe(100);
  // 10,001 synchronous calls: one write (the flush before the result), never one per call.
  expect(transport.progressWrites).toBe(1);
  await w.stop();
  await transport.close();
});

it('refuses a progress value the server would refuse, where it is called', async () => {
  const errors: string[] = [];
  const w = createWorker({
    baseUrl: server.url,
    token: TOKEN,
    commands: ['progress.bad'],
    waitSeconds: 1,
    handler: (_task, ctx) => {
      for (const v of [NaN, Infinity, 'half' as unknown as number, [1] as unknown as number, { blob: 'x'.repeat(5000) }]) {
        try {
          ctx.progress(v);
        } catch (e) {
          errors.push((e as { code?: string }).code ?? 'none');
        }
      }
      return {};
    },
  });
  workers.push(w);
  w.start();
  const t = await producer.submit('progress.bad', {});
  expect((await producer.waitForResult(t.id, { timeoutMs: 15_000 })).result.status).toBe('COMPLETED');
  expect(errors).toEqual(['VALIDATION_FAILED', 'VALIDATION_FAILED', 'VALIDATION_FAILED', 'VALIDATION_FAILED', 'VALIDATION_FAILED']);
  expect((await producer.get(t.id)).progress).toBeUndefined();
});

it('drops progress and log lines with taskNotes: false (ctx.logger still logs locally)', async () => {
  const seen: string[] = [];
  const w = createWorker({
    baseUrl: server.url,
    token: TOKEN,
    commands: ['progress.off'],
    waitSeconds: 1,
    taskNotes: false,
    logger: { info: (message) => seen.push(message) },
    handler: (_task, ctx) => {
      ctx.progress(50);
      ctx.log('not sent');
      ctx.logger.info('local only');
      return {};
    },
  });
  workers.push(w);
  w.start();
  const t = await producer.submit('progress.off', {});
  expect((await producer.waitForResult(t.id, { timeoutMs: 15_000 })).result.status).toBe('COMPLETED');
  expect((await producer.get(t.id)).progress).toBeUndefined();
  expect(await producer.logs(t.id)).toEqual([]);
  expect(seen).toContain('local only');
});
