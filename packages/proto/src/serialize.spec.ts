/** reusingSerializer: byte-identical to the generated serialiser, and every Buffer owns its bytes. */
import { producerpb, workerpb, reusingSerializer, MAX_KEPT_WRITER_BYTES } from './index.js';
import { producerServerEvents, workerServerEvents } from '../test/fixtures/events.js';

const generated = {
  worker: (m: workerpb.ServerEvent) => workerpb.WorkerStreamService.stream.responseSerialize(m),
  producer: (m: producerpb.ServerEvent) => producerpb.ProducerStreamService.stream.responseSerialize(m),
};

function task(i: number, payloadBytes: number): workerpb.Task {
  return {
    id: `0193b0f2-6c1e-4a3b-9d2e-${String(i).padStart(12, '0')}`,
    command: 'send-email',
    payload: Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(payloadBytes) })),
    priority: i % 10,
    webhook: '',
    maxAttempts: 5,
    status: 'IN_PROGRESS',
    workerId: 'w-1',
    leaseUntil: '2026-12-03T07:00:00Z',
    attempts: 1,
    tenantId: 'tenant-ü',
    createdAt: new Date(1_780_000_000_123 + i),
    updatedAt: new Date(1_780_000_000_456 + i),
    leaseId: `lease-${i}`,
    traceParent: '',
    traceState: '',
  };
}
const batch = (n: number, payloadBytes = 200): workerpb.ServerEvent => ({ event: { $case: 'taskBatch', taskBatch: { tasks: Array.from({ length: n }, (_, i) => task(i, payloadBytes)) } } });

describe('reusingSerializer', () => {
  it('encodes every worker and producer server event exactly like the generated serialiser', () => {
    const w = reusingSerializer(workerpb.ServerEvent);
    const p = reusingSerializer(producerpb.ServerEvent);
    for (const ev of Object.values(workerServerEvents)) expect(w(ev).equals(generated.worker(ev))).toBe(true);
    for (const ev of Object.values(producerServerEvents)) expect(p(ev).equals(generated.producer(ev))).toBe(true);
  });

  it('returns Buffers that later calls do not overwrite (small after large, large after small)', () => {
    const s = reusingSerializer(workerpb.ServerEvent);
    const msgs = [batch(64), batch(1), batch(300), batch(2, 10), { event: { $case: 'error', error: { code: 'Internal', message: 'x' } } } as workerpb.ServerEvent];
    const out = msgs.map((m) => s(m));
    msgs.forEach((m, i) => {
      expect(out[i]!.equals(generated.worker(m))).toBe(true);
      expect(workerpb.ServerEvent.decode(out[i]!)).toEqual(workerpb.ServerEvent.decode(generated.worker(m)));
    });
  });

  it('keeps working after a message larger than the kept-writer bound and after a failed encode', () => {
    const s = reusingSerializer(workerpb.ServerEvent);
    const big = batch(3, MAX_KEPT_WRITER_BYTES / 2);
    expect(s(big).equals(generated.worker(big))).toBe(true);
    const bad = batch(2);
    if (bad.event?.$case !== 'taskBatch') throw new Error('unexpected');
    bad.event.taskBatch.tasks[1]!.priority = 2 ** 40; // not an int32: the encoder throws midway
    expect(() => s(bad)).toThrow();
    const next = batch(5);
    expect(s(next).equals(generated.worker(next))).toBe(true);
  });
});
