/**
 * One validator for both transports (issue 11 item 3): every invalid case below is sent over HTTP
 * and over the gRPC streams of one real server (SQLite in a temp dir, real clients), and must fail
 * with the same error code and — except where the specs word a rule differently per transport
 * (`message: {http, grpc}`, see domain/commands.ts TEXT) — the same message. Nothing is applied.
 *
 * To cover a new field or command: add a row.
 */
import * as grpc from '@grpc/grpc-js';
import { ERRORS, type ErrorCode } from '@codeq/proto/errors';
import { client, startServer, T, type RunningServer } from './harness.js';
import { as, is, producerStream, workerStream, type StreamClient } from './grpc-clients.js';
import type { producerpb, workerpb } from '@codeq/proto';

const STREAMS = { workerStreamAddr: '127.0.0.1:0', producerStreamAddr: '127.0.0.1:0' };
const CMD = 'PARITY';
const TASK = '00000000-0000-4000-8000-000000000000'; // validation comes before any lookup

type Worker = StreamClient<workerpb.WorkerEvent, workerpb.ServerEvent>;
type Producer = StreamClient<producerpb.ProducerEvent, producerpb.ServerEvent>;

type Grpc =
  | { create: Partial<producerpb.CreateTask> }
  | { ready: Partial<workerpb.Ready> }
  | { result: Partial<workerpb.Result> }
  | { nack: Partial<workerpb.Nack> }
  | { heartbeat: Partial<workerpb.Heartbeat> };

interface Case {
  name: string;
  http: { path: string; body: unknown };
  grpc: Grpc;
  code: ErrorCode;
  message: string | { http: string; grpc: string };
  /** Token of both the HTTP call and the stream (default: the producer / the all-scopes worker). */
  token?: string;
}

const nested = (depth: number): unknown => (depth <= 1 ? {} : { a: nested(depth - 1) });
const DEEP = nested(65);
const MAX_LEASE = 7 * 86400;

const create = (extra: Record<string, unknown>) => ({ command: CMD, payload: { n: 1 }, ...extra });
const RESULT = `/v1/codeq/tasks/${TASK}/result`;

const CASES: Case[] = [
  // --- create ------------------------------------------------------------------------------------
  { name: 'create: command missing', http: { path: '/v1/codeq/tasks', body: { payload: {} } }, grpc: { create: { command: '' } }, code: 'VALIDATION_FAILED', message: { http: 'invalid body', grpc: 'command is required' } },
  { name: 'create: command with a control character', http: { path: '/v1/codeq/tasks', body: create({ command: 'A\u0001B' }) }, grpc: { create: { command: 'A\u0001B' } }, code: 'VALIDATION_FAILED', message: 'invalid command' },
  { name: 'create: command too long', http: { path: '/v1/codeq/tasks', body: create({ command: 'C'.repeat(257) }) }, grpc: { create: { command: 'C'.repeat(257) } }, code: 'VALIDATION_FAILED', message: 'invalid command' },
  { name: 'create: negative delaySeconds', http: { path: '/v1/codeq/tasks', body: create({ delaySeconds: -1 }) }, grpc: { create: { delaySeconds: -1 } }, code: 'VALIDATION_FAILED', message: { http: "invalid 'delaySeconds' (must be >= 0)", grpc: 'delaySeconds must be >= 0' } },
  { name: 'create: webhook not http(s)', http: { path: '/v1/codeq/tasks', body: create({ webhook: 'ftp://example.com/x' }) }, grpc: { create: { webhook: 'ftp://example.com/x' } }, code: 'VALIDATION_FAILED', message: 'invalid webhook url' },
  { name: 'create: webhook with a control character', http: { path: '/v1/codeq/tasks', body: create({ webhook: 'https://example.com/\u0000' }) }, grpc: { create: { webhook: 'https://example.com/\u0000' } }, code: 'VALIDATION_FAILED', message: 'invalid webhook url' },
  { name: 'create: idempotencyKey too long', http: { path: '/v1/codeq/tasks', body: create({ idempotencyKey: 'k'.repeat(257) }) }, grpc: { create: { idempotencyKey: 'k'.repeat(257) } }, code: 'VALIDATION_FAILED', message: "invalid 'idempotencyKey' (at most 256 printable characters)" },
  { name: 'create: idempotencyKey with a control character', http: { path: '/v1/codeq/tasks', body: create({ idempotencyKey: 'a\nb' }) }, grpc: { create: { idempotencyKey: 'a\nb' } }, code: 'VALIDATION_FAILED', message: "invalid 'idempotencyKey' (at most 256 printable characters)" },
  { name: 'create: maxAttempts above 1000 (was clamped on gRPC)', http: { path: '/v1/codeq/tasks', body: create({ maxAttempts: 1001 }) }, grpc: { create: { maxAttempts: 1001 } }, code: 'VALIDATION_FAILED', message: "invalid 'maxAttempts' (must be <= 1000)" },
  { name: 'create: payload nested too deep', http: { path: '/v1/codeq/tasks', body: create({ payload: DEEP }) }, grpc: { create: { payload: Buffer.from(JSON.stringify(DEEP)) } }, code: 'VALIDATION_FAILED', message: 'invalid body: JSON nested deeper than 64 levels' },
  // --- claim / Ready -----------------------------------------------------------------------------
  { name: 'claim: lease above 7 days (was clamped on gRPC)', http: { path: '/v1/codeq/tasks/claim', body: { commands: [CMD], leaseSeconds: MAX_LEASE + 1 } }, grpc: { ready: { commands: [CMD], leaseSeconds: MAX_LEASE + 1 } }, code: 'VALIDATION_FAILED', message: `invalid 'leaseSeconds' (must be <= ${MAX_LEASE})` },
  { name: 'claim: more than 100 commands', http: { path: '/v1/codeq/tasks/claim', body: { commands: Array.from({ length: 101 }, (_, i) => `C${i}`) } }, grpc: { ready: { commands: Array.from({ length: 101 }, (_, i) => `C${i}`) } }, code: 'VALIDATION_FAILED', message: "invalid 'commands' (at most 100)" },
  { name: 'claim: command with a control character (was unchecked on gRPC)', http: { path: '/v1/codeq/tasks/claim', body: { commands: ['A\u0007'] } }, grpc: { ready: { commands: ['A\u0007'] } }, code: 'VALIDATION_FAILED', message: 'invalid command' },
  { name: 'claim: command too long (was unchecked on gRPC)', http: { path: '/v1/codeq/tasks/claim', body: { commands: ['C'.repeat(257)] } }, grpc: { ready: { commands: ['C'.repeat(257)] } }, code: 'VALIDATION_FAILED', message: 'invalid command' },
  { name: 'claim: command outside the token eventTypes', token: T.limited, http: { path: '/v1/codeq/tasks/claim', body: { commands: ['OTHER'] } }, grpc: { ready: { commands: ['OTHER'] } }, code: 'FORBIDDEN', message: 'event type not allowed' },
  // --- heartbeat / nack --------------------------------------------------------------------------
  { name: 'heartbeat: extension above 7 days (was clamped on gRPC)', http: { path: `/v1/codeq/tasks/${TASK}/heartbeat`, body: { extendSeconds: MAX_LEASE + 1 } }, grpc: { heartbeat: { taskId: TASK, extendSeconds: MAX_LEASE + 1 } }, code: 'VALIDATION_FAILED', message: `invalid 'extendSeconds' (must be <= ${MAX_LEASE})` },
  { name: 'nack: reason with NUL', http: { path: `/v1/codeq/tasks/${TASK}/nack`, body: { reason: 'a\u0000b' } }, grpc: { nack: { taskId: TASK, reason: 'a\u0000b' } }, code: 'VALIDATION_FAILED', message: "invalid 'reason' (must not contain NUL characters)" },
  // --- result ------------------------------------------------------------------------------------
  { name: 'result: unknown status', http: { path: RESULT, body: { status: 'DONE', result: {} } }, grpc: { result: { taskId: TASK, status: 'DONE', resultJson: Buffer.from('{}') } }, code: 'VALIDATION_FAILED', message: { http: 'invalid status', grpc: 'invalid status (must be COMPLETED or FAILED): "DONE"' } },
  { name: 'result: COMPLETED without a result', http: { path: RESULT, body: { status: 'COMPLETED' } }, grpc: { result: { taskId: TASK, status: 'COMPLETED' } }, code: 'VALIDATION_FAILED', message: 'result required when status=COMPLETED' },
  { name: 'result: COMPLETED with a null result', http: { path: RESULT, body: { status: 'COMPLETED', result: null } }, grpc: { result: { taskId: TASK, status: 'COMPLETED', resultJson: Buffer.from('null') } }, code: 'VALIDATION_FAILED', message: 'result required when status=COMPLETED' },
  { name: 'result: FAILED with a blank error', http: { path: RESULT, body: { status: 'FAILED', error: '  ' } }, grpc: { result: { taskId: TASK, status: 'FAILED', error: '  ' } }, code: 'VALIDATION_FAILED', message: 'error required when status=FAILED' },
  { name: 'result: error with NUL', http: { path: RESULT, body: { status: 'FAILED', error: 'x\u0000' } }, grpc: { result: { taskId: TASK, status: 'FAILED', error: 'x\u0000' } }, code: 'VALIDATION_FAILED', message: "invalid 'error' (must not contain NUL characters)" },
  { name: 'result: result nested too deep', http: { path: RESULT, body: { status: 'COMPLETED', result: DEEP } }, grpc: { result: { taskId: TASK, status: 'COMPLETED', resultJson: Buffer.from(JSON.stringify(DEEP)) } }, code: 'VALIDATION_FAILED', message: 'invalid body: JSON nested deeper than 64 levels' },
];

/** `INVALID_ARGUMENT` → `InvalidArgument` (ServerError.code, as Go prints gRPC codes). */
const codeName = (code: ErrorCode) =>
  (grpc.status[ERRORS[code].grpc] as string)
    .split('_')
    .map((w) => w[0] + w.slice(1).toLowerCase())
    .join('');

let s: RunningServer;
const open: { close(): void }[] = [];
const workers = new Map<string, Worker>();
let producer: Producer;
let seq = 0;

async function worker(token: string): Promise<Worker> {
  let w = workers.get(token);
  if (!w) {
    w = workerStream(s.app.streams.workerPort);
    open.push(w);
    w.send({ event: { $case: 'hello', hello: { token, workerId: '' } } });
    await w.next(is('helloAck'));
    workers.set(token, w);
  }
  return w;
}

/** Send the case's stream event; the failure as `{code, message}` (a catalogue code, or a gRPC code name for ServerError). */
async function viaGrpc(c: Case): Promise<{ code: string; message: string; via: 'ack' | 'serverError' }> {
  const g = c.grpc;
  if ('create' in g) {
    const n = String(++seq);
    const create: producerpb.CreateTask = { seq: n, command: CMD, payload: Buffer.from('{"n":1}'), priority: 0, webhook: '', maxAttempts: 0, idempotencyKey: '', delaySeconds: 0, traceParent: '', traceState: '', ...g.create };
    producer.send({ event: { $case: 'create', create } });
    const ack = as(await producer.next((e) => e.event?.$case === 'createAck' && e.event.createAck.seq === n), 'createAck').createAck;
    expect(ack.ok).toBe(false);
    return { code: ack.errorCode, message: ack.errorMessage, via: 'ack' };
  }
  const w = await worker(c.token ?? T.worker);
  if ('ready' in g) {
    w.send({ event: { $case: 'ready', ready: { commands: [], leaseSeconds: 0, count: 1, ...g.ready } } });
    const err = as(await w.next(is('error')), 'error').error;
    return { code: err.code, message: err.message, via: 'serverError' };
  }
  if ('result' in g) {
    w.send({ event: { $case: 'result', result: { taskId: TASK, status: '', resultJson: Buffer.alloc(0), error: '', leaseId: '', ...g.result } } });
    const ack = as(await w.next(is('resultAck')), 'resultAck').resultAck;
    expect(ack.ok).toBe(false);
    return { code: ack.errorCode, message: ack.errorMessage, via: 'ack' };
  }
  if ('nack' in g) {
    w.send({ event: { $case: 'nack', nack: { taskId: TASK, delaySeconds: 0, reason: '', leaseId: '', ...g.nack } } });
    const ack = as(await w.next(is('nackAck')), 'nackAck').nackAck;
    expect(ack.ok).toBe(false);
    return { code: ack.errorCode, message: ack.errorMessage, via: 'ack' };
  }
  w.send({ event: { $case: 'heartbeat', heartbeat: { taskId: TASK, extendSeconds: 0, leaseId: '', ...g.heartbeat } } });
  const ack = as(await w.next(is('heartbeatAck')), 'heartbeatAck').heartbeatAck;
  expect(ack.ok).toBe(false);
  return { code: ack.errorCode, message: ack.errorMessage, via: 'ack' };
}

describe('the same invalid input fails the same way over HTTP and gRPC', () => {
  // Inside the describe: stopped before the harness checks for servers left running.
  beforeAll(async () => {
    s = await startServer(STREAMS);
    producer = producerStream(s.app.streams.producerPort);
    open.push(producer);
    producer.send({ event: { $case: 'hello', hello: { token: T.producer } } });
    await producer.next(is('helloAck'));
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await s.stop();
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const token = c.token ?? ('create' in c.grpc ? T.producer : T.worker);
    const res = await client(s.url).call('POST', c.http.path, { token, body: c.http.body });
    const httpMessage = typeof c.message === 'string' ? c.message : c.message.http;
    const grpcMessage = typeof c.message === 'string' ? c.message : c.message.grpc;
    expect({ status: res.status, code: res.body?.code, error: res.body?.error }).toEqual({ status: ERRORS[c.code].http, code: c.code, error: httpMessage });

    const g = await viaGrpc(c);
    // Acks carry our catalogue code; a Ready's ServerError carries the code's gRPC status name.
    expect({ code: g.code, message: g.message }).toEqual({ code: g.via === 'ack' ? c.code : codeName(c.code), message: grpcMessage });
  });

  it('applied none of them: no task was created or claimed', async () => {
    const stats = await client(s.url).call('GET', `/v1/codeq/admin/queues/${CMD}`, { token: T.producer });
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({ ready: 0, delayed: 0, inProgress: 0, dlq: 0 });
  });

  it('treats proto3 zero values as unset, like absent JSON fields (not as invalid)', async () => {
    // maxAttempts 0, delaySeconds 0, priority 0, "" webhook and key: a valid create on both transports.
    const http = await client(s.url).create({ command: 'ZERO', payload: {}, maxAttempts: 0, delaySeconds: 0, priority: 0, webhook: '', idempotencyKey: '' });
    expect(http.status).toBe(202);
    const n = String(++seq);
    producer.send({ event: { $case: 'create', create: { seq: n, command: 'ZERO', payload: Buffer.alloc(0), priority: 0, webhook: '', maxAttempts: 0, idempotencyKey: '', delaySeconds: 0, traceParent: '', traceState: '' } } });
    const ack = as(await producer.next((e) => e.event?.$case === 'createAck' && e.event.createAck.seq === n), 'createAck').createAck;
    expect(ack).toMatchObject({ ok: true, errorCode: '' });
    const viaGrpc = await client(s.url).get(ack.taskId);
    expect({ maxAttempts: viaGrpc.body.maxAttempts, status: viaGrpc.body.status }).toEqual({ maxAttempts: http.body.maxAttempts, status: 'PENDING' });
    // Lease 0 and extension 0 mean the server default (300 s) on both transports.
    const w = await worker(T.worker);
    w.send({ event: { $case: 'ready', ready: { commands: ['ZERO'], leaseSeconds: 0, count: 0 } } });
    const t = as(await w.next(is('task')), 'task').task.task!;
    const hb = await client(s.url).heartbeat(t.id, { extendSeconds: 0 });
    expect(hb.status).toBe(200);
    w.send({ event: { $case: 'heartbeat', heartbeat: { taskId: t.id, extendSeconds: 0, leaseId: '' } } });
    expect(as(await w.next(is('heartbeatAck')), 'heartbeatAck').heartbeatAck).toMatchObject({ ok: true });
  });
});
