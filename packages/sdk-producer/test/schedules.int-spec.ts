/**
 * Schedules through the producer SDK (issue 17 item 4): admin.schedules.upsert/list/get/remove
 * against a real server process (real clock), over HTTP and with the gRPC transport (whose admin
 * calls use its HTTP fallback); a one-second schedule creates tasks the SDK then sees.
 */
import { createProducer, CodeqError, type Producer } from '../src/index.js';
import { startServer, TOKEN, type TestServer } from '@codeq/testkit';

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
}, 60_000);
afterAll(async () => {
  await server?.dispose();
});

describe.each(['http', 'grpc'] as const)('admin.schedules over %s', (mode) => {
  let producer: Producer;
  beforeAll(() => {
    producer = createProducer(mode === 'grpc' ? { grpcAddress: server.producerAddress, baseUrl: server.url, token: TOKEN } : { baseUrl: server.url, token: TOKEN });
  });
  afterAll(async () => {
    await producer?.close();
  });

  it('upsert, list, get, remove; bad input is a VALIDATION_FAILED CodeqError', async () => {
    const name = `${mode}-report`;
    const s = await producer.admin.schedules.upsert({ name, command: 'Report', payload: { x: 1 }, cron: '0 9 * * 1-5', timezone: 'Europe/Berlin', overlap: 'skip' });
    expect(s).toMatchObject({ name, command: 'Report', payload: { x: 1 }, cron: '0 9 * * 1-5', everySeconds: null, timezone: 'Europe/Berlin', overlap: 'skip', missed: 'fire_once', paused: false, lastTaskId: null });
    expect(Date.parse(s.nextRunAt!)).toBeGreaterThan(Date.now());
    const again = await producer.admin.schedules.upsert({ name, command: 'Report', payload: { x: 2 }, cron: '0 9 * * 1-5', timezone: 'Europe/Berlin', overlap: 'skip' });
    expect(again.nextRunAt).toBe(s.nextRunAt);
    expect((await producer.admin.schedules.list()).map((x) => x.name)).toContain(name);
    expect((await producer.admin.schedules.get(name)).payload).toEqual({ x: 2 });

    const err = await producer.admin.schedules.upsert({ name: `${mode}-bad`, command: 'Report', payload: {}, cron: '0 9 * * *', everySeconds: 5 }).catch((e: unknown) => e);
    expect(CodeqError.is(err)).toBe(true);
    expect(err).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringMatching(/not both/) });
    await expect(producer.admin.schedules.upsert({ name: `${mode}-tz`, command: 'Report', payload: {}, cron: '0 9 * * *', timezone: 'Nowhere/City' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });

    expect(await producer.admin.schedules.remove(name)).toBe(true);
    expect(await producer.admin.schedules.remove(name)).toBe(false);
    await expect(producer.admin.schedules.get(name)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(producer.admin.schedules.get('')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  }, 60_000);

  it('a one-second schedule creates tasks (real clock)', async () => {
    const command = `${mode}.tick`;
    await producer.admin.schedules.upsert({ name: `${mode}-tick`, command, payload: { from: 'schedule' }, everySeconds: 1 });
    const deadline = Date.now() + 30_000;
    let seen = 0;
    while (Date.now() < deadline) {
      seen = (await producer.listPage({ command, limit: 10 })).tasks.length;
      if (seen >= 2) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(seen).toBeGreaterThanOrEqual(2);
    await producer.admin.schedules.remove(`${mode}-tick`);
    const page = await producer.listPage({ command, limit: 1 });
    expect(page.tasks[0]?.payloadJson).toEqual({ from: 'schedule' });
    await expect(producer.admin.schedules.get(`${mode}-tick`)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  }, 60_000);
});
