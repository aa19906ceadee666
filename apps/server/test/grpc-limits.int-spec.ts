/**
 * Issue 12 item 11: `grpc.max_concurrent_streams` is enforced on the gRPC listeners. A raw HTTP/2
 * client (grpc-js and node:http2 clients would queue extra streams themselves) opens one stream
 * more than allowed on one connection: the server refuses exactly that stream (RST_STREAM), keeps
 * the others open, and keeps serving.
 */
import { connect, type Socket } from 'node:net';
import { MAX_CONCURRENT_STREAMS } from '../src/modules/streams/stream-listener.js';
import { client, sleep, startServer, T, type RunningServer } from './harness.js';
import { is, workerStream } from './grpc-clients.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const SETTINGS = 0x4;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const GOAWAY = 0x7;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;

function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK "literal header field without indexing, new name", no Huffman (short strings only). */
function hpack(headers: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of headers) parts.push(Buffer.from([0x00, k.length]), Buffer.from(k), Buffer.from([v.length]), Buffer.from(v));
  return Buffer.concat(parts);
}

interface Seen {
  maxStreams: number | null;
  resets: Map<number, number>;
  goaway: { lastStreamId: number; code: number } | null;
}

const sockets: Socket[] = [];

/**
 * Connect, exchange SETTINGS (ACKing the server's), then open `n` gRPC streams at once (HEADERS
 * with END_HEADERS, not END_STREAM: each stays open, the server waits for its Hello).
 */
async function openStreams(port: number, n: number): Promise<{ seen: Seen; ids: number[] }> {
  const sock = connect(port, '127.0.0.1');
  sockets.push(sock);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const seen: Seen = { maxStreams: null, resets: new Map(), goaway: null };
  let buf = Buffer.alloc(0);
  let settled!: () => void;
  const gotSettings = new Promise<void>((r) => (settled = r));
  sock.on('error', () => undefined);
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const type = buf[3]!;
      const flags = buf[4]!;
      const id = buf.readUInt32BE(5) & 0x7fffffff;
      const p = buf.subarray(9, 9 + len);
      buf = buf.subarray(9 + len);
      if (type === SETTINGS && !(flags & 0x1)) {
        for (let i = 0; i + 6 <= p.length; i += 6) if (p.readUInt16BE(i) === SETTINGS_MAX_CONCURRENT_STREAMS) seen.maxStreams = p.readUInt32BE(i + 2);
        sock.write(frame(SETTINGS, 0x1, 0));
        settled();
      } else if (type === RST_STREAM) seen.resets.set(id, p.readUInt32BE(0));
      else if (type === GOAWAY) seen.goaway = { lastStreamId: p.readUInt32BE(0) & 0x7fffffff, code: p.readUInt32BE(4) };
    }
  });
  sock.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
  await gotSettings;
  const headers = hpack([
    [':method', 'POST'], [':scheme', 'http'], [':path', '/workerpb.WorkerStream/Stream'], [':authority', `127.0.0.1:${port}`],
    ['content-type', 'application/grpc'], ['te', 'trailers'],
  ]);
  const ids = Array.from({ length: n }, (_, i) => 2 * i + 1);
  sock.write(Buffer.concat(ids.map((id) => frame(HEADERS, 0x4, id, headers))));
  return { seen, ids };
}

let s: RunningServer | null = null;
afterEach(async () => {
  for (const k of sockets.splice(0)) k.destroy();
  await s?.stop();
  s = null;
});

describe('gRPC stream limits (issue 12 item 11)', () => {
  it(`refuses stream ${MAX_CONCURRENT_STREAMS + 1} on one connection, keeps the first ${MAX_CONCURRENT_STREAMS} and keeps serving`, async () => {
    s = await startServer({ workerStreamAddr: '127.0.0.1:0', producerStreamAddr: '127.0.0.1:0' });
    const port = s.app.streams.workerPort;
    // At the limit: every stream is accepted and stays open.
    const full = await openStreams(port, MAX_CONCURRENT_STREAMS);
    expect(full.seen.maxStreams).toBe(MAX_CONCURRENT_STREAMS);
    await sleep(1500);
    expect(full.seen.resets.size).toBe(0);
    expect(full.seen.goaway).toBeNull();

    // One more on another connection: the extra stream is refused. Node's HTTP/2 layer answers it
    // with RST_STREAM (REFUSED_STREAM / PROTOCOL_ERROR, RFC 9113 §5.1.2) or closes that connection
    // with GOAWAY, naming a last accepted stream before the extra one.
    const over = await openStreams(port, MAX_CONCURRENT_STREAMS + 1);
    const extra = over.ids[over.ids.length - 1]!;
    const until = Date.now() + 10_000;
    while (!over.seen.resets.has(extra) && over.seen.goaway === null && Date.now() < until) await sleep(20);
    if (over.seen.goaway) expect(over.seen.goaway.lastStreamId).toBeLessThan(extra);
    else expect([0x1, 0x7]).toContain(over.seen.resets.get(extra));
    // The connection at the limit is untouched.
    expect(full.seen.resets.size).toBe(0);
    expect(full.seen.goaway).toBeNull();

    // The listener still serves: a real worker completes its handshake on a new connection.
    const w = workerStream(port);
    try {
      w.send({ event: { $case: 'hello', hello: { token: T.worker, workerId: '' } } });
      await w.next(is('helloAck'), 10_000);
    } finally {
      w.close();
    }
    expect((await client(s.url).call('GET', '/healthz')).status).toBe(200);
  }, 60_000);
});
