import { producerpb } from '@codeq/proto';
import { taskFromAck, taskFromStored } from './grpc-producer-transport.js';
import { parseTask } from './types.js';

describe('the task of a CreateAck', () => {
  it('from CreateAck.task is the same Task as the HTTP JSON of that task', () => {
    const stored = producerpb.StoredTask.fromPartial({
      id: 't-1',
      command: 'email.send',
      payload: Buffer.from('{"to":"a@example.com"}'),
      priority: 3,
      webhook: 'https://hooks.example.com/r',
      maxAttempts: 5,
      status: 'IN_PROGRESS',
      lastKnownLocation: 'INPROG_SET',
      attempts: 1,
      tenantId: 'acme',
      createdAt: '2026-01-02T03:04:05.123456789Z',
      updatedAt: '2026-01-02T03:04:06Z',
      workerId: 'w-1',
      leaseUntil: '2026-01-02T03:09:06Z',
      leaseId: 'l-1',
      cancelRequested: true,
    });
    // What GET /v1/codeq/tasks/t-1 answers for the same task (empty fields omitted, as the server does).
    const http = parseTask({
      id: 't-1',
      command: 'email.send',
      payload: '{"to":"a@example.com"}',
      priority: 3,
      webhook: 'https://hooks.example.com/r',
      status: 'IN_PROGRESS',
      lastKnownLocation: 'INPROG_SET',
      workerId: 'w-1',
      leaseUntil: '2026-01-02T03:09:06Z',
      leaseId: 'l-1',
      attempts: 1,
      maxAttempts: 5,
      tenantId: 'acme',
      createdAt: '2026-01-02T03:04:05.123456789Z',
      updatedAt: '2026-01-02T03:04:06Z',
      cancelRequested: true,
    });
    const t = taskFromStored(stored);
    expect(t).toEqual(http);
    expect(t.data).toEqual({ to: 'a@example.com' });
    expect(t.payloadJson).toBe(t.data);
  });

  it('from an upstream ack (no task) falls back to the submitted values', () => {
    const now = Date.parse('2026-01-02T03:04:05Z');
    const t = taskFromAck('t-2', { command: 'x', payload: { a: 1 }, priority: 12, delaySeconds: 60 }, '{"a":1}', { tenantId: 'acme', subject: 's' }, now);
    expect(t).toEqual({
      id: 't-2',
      command: 'x',
      payload: '{"a":1}',
      data: { a: 1 },
      payloadJson: { a: 1 },
      priority: 9,
      status: 'PENDING',
      lastKnownLocation: 'DELAYED_ZSET',
      attempts: 0,
      maxAttempts: 0,
      tenantId: 'acme',
      createdAt: '2026-01-02T03:04:05.000Z',
      updatedAt: '2026-01-02T03:04:05.000Z',
    });
  });
});
