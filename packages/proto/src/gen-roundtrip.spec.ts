/** (a) The generated encoders/decoders round-trip every event kind of both streams. */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { producerpb, workerpb } from './index.js';
import {
  MAX_UINT64,
  producerEvents,
  producerServerEvents,
  workerEvents,
  workerServerEvents,
} from '../test/fixtures/events.js';

interface Codec<T> {
  encode(m: T): { finish(): Uint8Array };
  decode(b: Uint8Array): T;
  toJSON(m: T): unknown;
  fromJSON(o: unknown): T;
}

const streams: Array<[string, Codec<any>, Record<string, { event?: { $case: string } | undefined }>]> = [
  ['workerpb.WorkerEvent', workerpb.WorkerEvent, workerEvents],
  ['workerpb.ServerEvent', workerpb.ServerEvent, workerServerEvents],
  ['producerpb.ProducerEvent', producerpb.ProducerEvent, producerEvents],
  ['producerpb.ServerEvent', producerpb.ServerEvent, producerServerEvents],
];

describe.each(streams)('%s', (_name, codec, samples) => {
  it.each(Object.keys(samples))('round-trips %s through the binary encoding', (kind) => {
    const sample = samples[kind]!;
    expect(sample.event?.$case).toBe(kind);
    const bytes = codec.encode(sample).finish();
    expect(bytes.length).toBeGreaterThan(0);
    expect(codec.decode(bytes)).toEqual(sample);
  });

  it.each(Object.keys(samples))('round-trips %s through the JSON mapping', (kind) => {
    const sample = samples[kind]!;
    expect(codec.fromJSON(JSON.parse(JSON.stringify(codec.toJSON(sample))))).toEqual(sample);
  });

  it('decodes an empty message as "no event" (the server answers unknown-event)', () => {
    expect(codec.decode(new Uint8Array()).event).toBeUndefined();
  });
});

describe('wire details', () => {
  it('keeps uint64 seq exact across the whole range (forceLong=string)', () => {
    for (const seq of ['0', '1', '9007199254740993', MAX_UINT64]) {
      const back = producerpb.CreateAck.decode(producerpb.CreateAck.encode(producerpb.CreateAck.fromPartial({ seq })).finish());
      expect(back.seq).toBe(seq);
    }
  });

  it('skips fields it does not know (a newer peer may send more)', () => {
    const w = new BinaryWriter();
    workerpb.Heartbeat.encode(workerpb.Heartbeat.fromPartial({ taskId: 't', extendSeconds: 5 }), w);
    w.uint32((999 << 3) | 2).string('from the future');
    w.uint32((998 << 3) | 0).int64('-5');
    expect(workerpb.Heartbeat.decode(w.finish())).toEqual(
      workerpb.Heartbeat.fromPartial({ taskId: 't', extendSeconds: 5, leaseId: '' }),
    );
  });

  it('leaves the codeQ-TS additions off the wire when empty (upstream peers see upstream bytes)', () => {
    const plain = workerpb.Abandon.encode({ taskId: 't-1', leaseId: '' }).finish();
    expect(Buffer.from(plain).toString('hex')).toBe('0a03742d31'); // field 1, len 3, "t-1"
    const fenced = workerpb.Abandon.encode({ taskId: 't-1', leaseId: 'l' }).finish();
    // field 100, wire type 2 -> tag varint 0xa2 0x06
    expect(Buffer.from(fenced).toString('hex')).toBe('0a03742d31a206016c');
  });

  it('swaps ServerError field order between the two packages, as upstream does', () => {
    const w = Buffer.from(workerpb.ServerError.encode({ message: 'm', code: 'c' }).finish()).toString('hex');
    const p = Buffer.from(producerpb.ServerError.encode({ code: 'c', message: 'm' }).finish()).toString('hex');
    expect(w).toBe('0a016d120163'); // 1:"m" 2:"c"
    expect(p).toBe('0a016312016d'); // 1:"c" 2:"m"
  });

  it('exposes the grpc-js service definitions at the upstream method paths', () => {
    expect(workerpb.WorkerStreamService.stream).toMatchObject({
      path: '/workerpb.WorkerStream/Stream',
      requestStream: true,
      responseStream: true,
    });
    expect(producerpb.ProducerStreamService.stream).toMatchObject({
      path: '/producerpb.ProducerStream/Stream',
      requestStream: true,
      responseStream: true,
    });
  });
});
