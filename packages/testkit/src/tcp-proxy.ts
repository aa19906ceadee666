/**
 * A TCP proxy for fault injection in front of a server port (HTTP/2 gRPC or HTTP/1): forwards
 * bytes both ways, can silently drop what the server sends (an answer "lost in the network"),
 * and can cut every open connection at once.
 */
import { createServer, connect, type Socket } from 'node:net';

export interface TcpProxy {
  /** `127.0.0.1:<port>` of the proxy. */
  readonly address: string;
  readonly port: number;
  /** While true, bytes from the server to the client are dropped (the connections stay open). */
  dropResponses: boolean;
  /** Bytes dropped since the last reset. */
  readonly droppedBytes: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Destroys every open connection (both sides); new connections are still accepted. */
  cutAll(): void;
  close(): Promise<void>;
}

/** Starts a proxy to `target()` (`host:port`, read on every new connection). */
export async function startTcpProxy(target: () => string): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let dropped = 0;
  let accepted = 0;
  const state = { dropResponses: false };
  const srv = createServer((client) => {
    accepted++;
    const [host, port] = splitHostPort(target());
    const upstream = connect(port, host);
    open.add(client);
    open.add(upstream);
    const done = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
    client.on('data', (d: Buffer) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      if (state.dropResponses) dropped += d.length;
      else client.write(d);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const a = srv.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    address: `127.0.0.1:${port}`,
    port,
    get dropResponses() {
      return state.dropResponses;
    },
    set dropResponses(v: boolean) {
      state.dropResponses = v;
    },
    get droppedBytes() {
      return dropped;
    },
    get accepted() {
      return accepted;
    },
    cutAll() {
      for (const s of [...open]) s.destroy();
      open.clear();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of [...open]) s.destroy();
        open.clear();
        srv.close(() => r());
      }),
  };
}

function splitHostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1', Number(addr.slice(i + 1))];
}
