/**
 * The stream adapter of the input layer on decoded wire messages: fields read from the decoder's
 * views of one message buffer (payload and result bytes are read in place), zero meaning unset,
 * trace context kept only when well formed.
 */
import { producerpb, workerpb } from '@codeq/proto';
import { createFromProto, resultFromProto } from './stream-commands.js';

const NOW = Date.UTC(2026, 11, 3, 7, 0, 0);
const PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** Encode then decode: the message's bytes fields are views into one shared buffer, as on a stream. */
function wireCreate(c: Partial<producerpb.CreateTask>): producerpb.CreateTask {
  const batch = producerpb.CreateTaskBatch.fromPartial({ tasks: [{ seq: '1', command: 'before', payload: Buffer.from('{"x":1}') }, c, { seq: '3', command: 'after', payload: Buffer.from('"tail"') }] });
  return producerpb.CreateTaskBatch.decode(producerpb.CreateTaskBatch.encode(batch).finish()).tasks[1]!;
}

describe('createFromProto', () => {
  it('reads a payload view of a larger message buffer (normalised like HTTP) and leaves unset fields at their defaults', () => {
    const c = wireCreate({ seq: '2', command: ' send-email ', payload: Buffer.from('{"b":1,"a":"<x>"}') });
    expect(c.payload.byteOffset).toBeGreaterThan(0); // a view, not a copy
    expect(createFromProto(c, NOW)).toEqual({
      command: 'send-email',
      payload: '{"a":"\\u003cx\\u003e","b":1}',
      priority: 0,
      webhook: null,
      maxAttempts: 0,
      idempotencyKey: null,
      visibleAtMs: null,
      traceParent: null,
      traceState: null,
    });
  });

  it('stores non-JSON payload bytes verbatim and maps every set field', () => {
    const c = wireCreate({ seq: '2', command: 'resize', payload: Buffer.from('plain text ü'), priority: 7, webhook: 'https://example.com/hook', maxAttempts: 4, idempotencyKey: 'k-1', delaySeconds: 30 });
    expect(createFromProto(c, NOW)).toEqual({
      command: 'resize',
      payload: 'plain text ü',
      priority: 7,
      webhook: 'https://example.com/hook',
      maxAttempts: 4,
      idempotencyKey: 'k-1',
      visibleAtMs: NOW + 30_000,
      traceParent: null,
      traceState: null,
    });
  });

  it('keeps a well-formed trace context and drops a malformed one', () => {
    expect(createFromProto(wireCreate({ command: 'a', payload: Buffer.from('1'), traceParent: PARENT, traceState: 'k=v' }), NOW)).toMatchObject({ traceParent: PARENT, traceState: 'k=v' });
    expect(createFromProto(wireCreate({ command: 'a', payload: Buffer.from('1'), traceParent: 'not-a-traceparent', traceState: 'k=v' }), NOW)).toMatchObject({ traceParent: null, traceState: null });
    expect(createFromProto(wireCreate({ command: 'a', payload: Buffer.from('1'), traceState: 'k=v' }), NOW)).toMatchObject({ traceParent: null, traceState: null });
  });

  it('refuses what HTTP refuses, with the stream texts', () => {
    expect(() => createFromProto(wireCreate({ command: '  ', payload: Buffer.from('1') }), NOW)).toThrow();
    expect(() => createFromProto(wireCreate({ command: 'a', payload: Buffer.from('1'), delaySeconds: -1 }), NOW)).toThrow();
  });
});

describe('resultFromProto', () => {
  it('reads result_json from a view of a larger message buffer', () => {
    const batch = workerpb.ResultBatch.fromPartial({ results: [
      { taskId: 't1', status: 'COMPLETED', resultJson: Buffer.from('{"first":true}') },
      { taskId: 't2', status: 'COMPLETED', resultJson: Buffer.from('{"ok":"ü"}'), leaseId: 'l2' },
    ] });
    const r = workerpb.ResultBatch.decode(workerpb.ResultBatch.encode(batch).finish()).results[1]!;
    expect(r.resultJson.byteOffset).toBeGreaterThan(0);
    expect(resultFromProto(r)).toMatchObject({ taskId: 't2', status: 'COMPLETED', leaseId: 'l2', result: '{"ok":"ü"}' });
  });
});
