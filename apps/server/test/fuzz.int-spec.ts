/**
 * Issue 12 fuzz test: generated HTTP bodies and gRPC events (wrong types, huge and tiny numbers,
 * deep and wide JSON, unicode and control characters, oversize bodies) against a real server.
 * Properties: no 5xx (no INTERNAL ack), the server keeps serving, and a 4xx (a refused ack) changes
 * nothing — the tenant's queue counts and a held task are the same before and after.
 * Runs on both engines (the harness picks PostgreSQL when CODEQ_TEST_PG_URL is set).
 */
import fc from 'fast-check';
import { call, client, startServer, T, type RunningServer } from './harness.js';
import { is, producerStream, workerStream, type StreamClient } from './grpc-clients.js';
import type { producerpb, workerpb } from '@codeq/proto';

let s: RunningServer;
const MAX_BODY = 64 * 1024;
const RUNS = Number(process.env['CODEQ_FUZZ_RUNS'] ?? 120);

// ---- generators --------------------------------------------------------------------------------

const controlString = fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), maxLength: 8 });
const anyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  controlString,
  fc.constantFrom('', ' ', '\u0000', 'http://127.0.0.1/\u0000', 'x'.repeat(300), '../../etc/passwd', 'COMPLETED', 'FAILED', '2026-01-01T00:00:00Z', 'not-a-date'),
);
const anyNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, -1, 1e308, -1e308, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 + 1, Number.MIN_VALUE, 0.5, 604801, 1001, 101),
);
const deepJson = fc.integer({ min: 1, max: 300 }).map((n) => {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = i % 2 ? [v] : { k: v };
  return v;
});
const wideJson = fc.integer({ min: 100, max: 5000 }).map((n) => Array.from({ length: n }, (_, i) => i));
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 2, arbitrary: anyString },
  { weight: 2, arbitrary: anyNumber },
  { weight: 1, arbitrary: deepJson },
  { weight: 1, arbitrary: wideJson },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}) },
);

/** A plausible body of each route with some fields replaced by arbitrary values. */
const fields: Record<string, string[]> = {
  create: ['command', 'payload', 'priority', 'webhook', 'maxAttempts', 'idempotencyKey', 'runAt', 'delaySeconds'],
  claim: ['commands', 'leaseSeconds', 'waitSeconds', 'count'],
  result: ['status', 'result', 'error', 'leaseId', 'artifacts', 'workerId'],
  nack: ['delaySeconds', 'reason', 'leaseId'],
  heartbeat: ['extendSeconds', 'leaseId'],
};
const base: Record<string, Record<string, unknown>> = {
  create: { command: 'fz', payload: { a: 1 } },
  claim: { commands: ['fz-none'], leaseSeconds: 30 },
  result: { status: 'COMPLETED', result: { ok: true } },
  nack: { delaySeconds: 1, reason: 'r' },
  heartbeat: { extendSeconds: 30 },
};
const mutated = (kind: keyof typeof fields) =>
  fc.record({ drop: fc.subarray(fields[kind]!), set: fc.dictionary(fc.constantFrom(...fields[kind]!), anyJson, { maxKeys: 3 }) }).map(({ drop, set }) => {
    const b: Record<string, unknown> = { ...base[kind] };
    for (const k of drop) delete b[k];
    return { ...b, ...set };
  });

type Req = { route: string; body: { kind: 'json'; value: unknown } | { kind: 'raw'; text: string } };
const body = (kind: keyof typeof fields) =>
  fc.oneof(
    { weight: 6, arbitrary: mutated(kind).map((value) => ({ kind: 'json' as const, value })) },
    { weight: 2, arbitrary: anyJson.map((value) => ({ kind: 'json' as const, value })) },
    { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 50 }), fc.constantFrom('{', '[1,', '{"a":1}}', 'null', '\u0000', `{"command":"fz","payload":${'['.repeat(100_000)}}`, `{"command":"fz","payload":${'['.repeat(50_000)}${']'.repeat(50_000)}}`, `{"tasks":[{"command":"fz","payload":1},{"command":"fz","payload":${'['.repeat(50_000)}${']'.repeat(50_000)}}]}`)).map((text) => ({ kind: 'raw' as const, text })) },
    { weight: 1, arbitrary: fc.integer({ min: MAX_BODY + 1, max: MAX_BODY * 3 }).map((n) => ({ kind: 'raw' as const, text: `{"command":"fz","payload":"${'x'.repeat(n)}"}` })) },
  );
const request: fc.Arbitrary<Req> = fc.oneof(
  body('create').map((b) => ({ route: 'POST /v1/codeq/tasks', body: b })),
  fc.array(mutated('create'), { minLength: 0, maxLength: 5 }).map((tasks) => ({ route: 'POST /v1/codeq/tasks/batch', body: { kind: 'json' as const, value: { tasks } } })),
  body('claim').map((b) => ({ route: 'POST /v1/codeq/tasks/claim', body: b })),
  body('claim').map((b) => ({ route: 'POST /v1/codeq/tasks/claim/batch', body: b })),
  body('result').map((b) => ({ route: 'POST /v1/codeq/tasks/:id/result', body: b })),
  body('nack').map((b) => ({ route: 'POST /v1/codeq/tasks/:id/nack', body: b })),
  body('heartbeat').map((b) => ({ route: 'POST /v1/codeq/tasks/:id/heartbeat', body: b })),
  fc.array(mutated('result'), { maxLength: 3 }).map((results) => ({ route: 'POST /v1/codeq/tasks/batch/results', body: { kind: 'json' as const, value: { results } } })),
  body('create').map((b) => ({ route: 'POST /v1/codeq/workers/subscriptions', body: b })),
);

// ---- state checks ------------------------------------------------------------------------------

/** A held task the result/nack/heartbeat routes aim at (replaced once it leaves IN_PROGRESS). */
let held: { id: string; leaseId: string } | null = null;

async function hold(): Promise<{ id: string; leaseId: string }> {
  const c = client(s.url);
  const t = await c.create({ command: 'fz-held', payload: {} });
  expect(t.status).toBe(202);
  const got = await c.claim({ commands: ['fz-held'], leaseSeconds: 600 });
  expect(got.status).toBe(200);
  return { id: got.body.id, leaseId: got.body.leaseId };
}

async function snapshot(): Promise<string> {
  const q = await call(s.url, 'GET', '/v1/codeq/admin/queues', { token: T.producer });
  expect(q.status).toBe(200);
  // Tasks per command, whatever their queue: timers (delayed promotion, lease expiry) move tasks
  // between queues but never add or remove one.
  const totals: Record<string, number> = {};
  for (const [k, n] of Object.entries(q.body as Record<string, number>)) {
    const command = k.split(':')[2]!;
    totals[command] = (totals[command] ?? 0) + n;
  }
  const t = held ? await call(s.url, 'GET', `/v1/codeq/tasks/${held.id}`, { token: T.producer }) : null;
  return JSON.stringify([Object.entries(totals).sort(), t?.body]);
}

async function send(r: Req): Promise<{ status: number; text: string }> {
  const [method, path] = r.route.split(' ') as [string, string];
  const token = /claim|result|nack|heartbeat|subscriptions/.test(path) ? T.worker : T.producer;
  const url = path.replace(':id', held?.id ?? 'none');
  const res = r.body.kind === 'json'
    ? await call(s.url, method, url, { token, body: r.body.value })
    : await call(s.url, method, url, { token, raw: r.body.text, headers: { 'content-type': 'application/json' } });
  return { status: res.status, text: res.text.slice(0, 300) };
}

describe('fuzz (issue 12)', () => {
  beforeAll(async () => {
    s = await startServer({ maxBodyBytes: MAX_BODY, workerStreamAddr: '127.0.0.1:0', producerStreamAddr: '127.0.0.1:0', backoffPolicy: 'fixed', backoffBaseSeconds: 0 });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('HTTP: no 5xx, and nothing changes on a 4xx', async () => {
    held = await hold();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const before = await snapshot();
        const res = await send(r);
        if (res.status >= 500) throw new Error(`${r.route} → ${res.status} ${res.text}`);
        if (res.status >= 400) {
          const after = await snapshot();
          if (after !== before) throw new Error(`${r.route} → ${res.status} but state changed:\n${before}\n${after}`);
        }
        const got = await call(s.url, 'GET', `/v1/codeq/tasks/${held!.id}`, { token: T.producer });
        if (got.body?.status !== 'IN_PROGRESS') held = await hold();
      }),
      { numRuns: RUNS },
    );
    expect((await call(s.url, 'GET', '/healthz')).status).toBe(200);
  }, 240_000);

  it('gRPC: no INTERNAL, streams stay up, and nothing changes on a refused entry', async () => {
    const p: StreamClient<producerpb.ProducerEvent, producerpb.ServerEvent> = producerStream(s.app.streams.producerPort);
    const w: StreamClient<workerpb.WorkerEvent, workerpb.ServerEvent> = workerStream(s.app.streams.workerPort);
    try {
      p.send({ event: { $case: 'hello', hello: { token: T.producer } } });
      await p.next(is('helloAck'));
      w.send({ event: { $case: 'hello', hello: { token: T.worker, workerId: '' } } });
      await w.next(is('helloAck'));
      held = await hold();
      const int32 = fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(0, -1, 1001, 2 ** 31 - 1));
      const bytes = fc.oneof(
        fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
        anyJson.map((v) => Buffer.from(JSON.stringify(v) ?? '')),
        anyString.map((t) => Buffer.from(t)),
      );
      const create = fc.record({
        seq: fc.nat().map(String), command: anyString, payload: bytes, priority: int32, webhook: anyString, maxAttempts: int32,
        idempotencyKey: anyString, delaySeconds: int32, traceParent: anyString, traceState: anyString,
      });
      const workerEvent = fc.oneof(
        fc.record({ status: anyString, resultJson: bytes, error: anyString, useHeld: fc.boolean() }).map((r) => ({ kind: 'result' as const, ...r })),
        fc.record({ delaySeconds: int32, reason: anyString, useHeld: fc.boolean() }).map((r) => ({ kind: 'nack' as const, ...r })),
        fc.record({ extendSeconds: int32, useHeld: fc.boolean() }).map((r) => ({ kind: 'heartbeat' as const, ...r })),
      );
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.array(create, { minLength: 1, maxLength: 4 }).map((tasks) => ({ kind: 'create' as const, tasks })), workerEvent), async (ev) => {
          const before = await snapshot();
          let refused = false;
          if (ev.kind === 'create') {
            p.send({ event: { $case: 'createBatch', createBatch: { tasks: ev.tasks } } });
            const acks = (await p.next(is('createAckBatch'), 15_000)).event as { createAckBatch: producerpb.CreateAckBatch };
            for (const a of acks.createAckBatch.acks) if (a.errorCode === 'INTERNAL') throw new Error(`create → INTERNAL ${a.errorMessage}`);
            refused = acks.createAckBatch.acks.every((a) => !a.ok);
          } else {
            const taskId = ev.useHeld && held ? held.id : 'none';
            const leaseId = ev.useHeld && held ? held.leaseId : '';
            if (ev.kind === 'result') w.send({ event: { $case: 'result', result: { taskId, status: ev.status, resultJson: ev.resultJson, error: ev.error, leaseId } } });
            if (ev.kind === 'nack') w.send({ event: { $case: 'nack', nack: { taskId, delaySeconds: ev.delaySeconds, reason: ev.reason, leaseId } } });
            if (ev.kind === 'heartbeat') w.send({ event: { $case: 'heartbeat', heartbeat: { taskId, extendSeconds: ev.extendSeconds, leaseId } } });
            const ack = (await w.next((e) => ['resultAck', 'nackAck', 'heartbeatAck', 'error'].includes(e.event?.$case ?? ''), 15_000)).event!;
            const a = (ack as Record<string, unknown>)[ack.$case] as { ok?: boolean; errorCode?: string; code?: string; message?: string };
            if (a.errorCode === 'INTERNAL' || a.code === 'Internal') throw new Error(`${ev.kind} → INTERNAL ${JSON.stringify(a)}`);
            refused = a.ok !== true;
          }
          if (refused) {
            const after = await snapshot();
            if (after !== before) throw new Error(`${ev.kind} refused but state changed:\n${before}\n${after}`);
          }
          const got = await call(s.url, 'GET', `/v1/codeq/tasks/${held!.id}`, { token: T.producer });
          if (got.body?.status !== 'IN_PROGRESS') held = await hold();
        }),
        { numRuns: Math.ceil(RUNS / 2) },
      );
      // Both streams are still usable.
      p.send({ event: { $case: 'createBatch', createBatch: { tasks: [{ seq: '1', command: 'fz-alive', payload: Buffer.from('{}'), priority: 0, webhook: '', maxAttempts: 0, idempotencyKey: '', delaySeconds: 0, traceParent: '', traceState: '' }] } } });
      const last = (await p.next(is('createAckBatch'))).event as { createAckBatch: producerpb.CreateAckBatch };
      expect(last.createAckBatch.acks[0]!.ok).toBe(true);
    } finally {
      p.close();
      w.close();
    }
  }, 240_000);
});
