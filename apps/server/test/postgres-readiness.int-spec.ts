/**
 * Issue 12 item 14: /readyz follows the PostgreSQL engine's connectivity. The server reaches the
 * database through a TCP proxy in the test; cutting the proxy makes the database unreachable for
 * real (no mock), restoring it brings readiness back.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { PG_URL, dropDatabase, ensureDatabase } from './pg.js';
import { sleep, startServer } from './harness.js';

async function status(url: string): Promise<number> {
  return (await fetch(`${url}/readyz`)).status;
}

async function waitFor(url: string, want: number, ms = 20_000): Promise<number> {
  const until = Date.now() + ms;
  let s = await status(url);
  while (s !== want && Date.now() < until) {
    await sleep(200);
    s = await status(url);
  }
  return s;
}

// Needs a PostgreSQL server (CODEQ_TEST_PG_URL); the SQLite pass has no database to cut off.
(PG_URL ? describe : describe.skip)('PostgreSQL readiness (issue 12 item 14)', () => {
  it('answers /readyz 503 while the database is unreachable and 200 once it is back', async () => {
    const target = new URL(PG_URL!);
    const sockets = new Set<Socket>();
    let accepting = true;
    const proxy: Server = createServer((client) => {
      if (!accepting) return client.destroy();
      const upstream = createConnection(Number(target.port || 5432), target.hostname);
      sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    const name = `codeq_t_ready_${process.pid}`;
    const direct = new URL(await ensureDatabase(name));
    direct.hostname = '127.0.0.1';
    direct.port = String((proxy.address() as AddressInfo).port);
    const srv = await startServer({}, { engine: { postgresUrl: direct.toString() } });
    try {
      expect(await status(srv.url)).toBe(200);
      accepting = false;
      for (const s of sockets) s.destroy();
      expect(await waitFor(srv.url, 503)).toBe(503);
      accepting = true;
      expect(await waitFor(srv.url, 200)).toBe(200);
    } finally {
      accepting = true;
      await srv.stop();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => proxy.close(() => r()));
      await dropDatabase(name);
    }
  }, 60_000);
});
