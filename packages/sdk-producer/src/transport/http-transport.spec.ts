import { CodeqError } from '@codeq/proto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpTransport } from './http-transport.js';
import { isConnectionError } from './errors.js';

type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;

/** A local HTTP server standing in for codeQ (an edge we do not own in these unit tests). */
async function fakeServer(handler: Handler): Promise<{ url: string; close: () => Promise<void>; requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> }> {
  const requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))),
  };
}

const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

const TASK = { id: 'a1', command: 'x', payload: '{"n":1}', status: 'PENDING', lastKnownLocation: 'PENDING_LIST', maxAttempts: 5, tenantId: 'acme', createdAt: 't', updatedAt: 't' };

describe(HttpTransport.name, () => {
  it('sends the bearer token and JSON, and parses the task', async () => {
    const s = await fakeServer((_q, _b, res) => json(res, 202, TASK));
    const t = new HttpTransport({ baseUrl: s.url + '/', token: 'secret' });
    try {
      const task = await t.createTask({ command: 'x', payload: { n: 1 }, idempotencyKey: 'k' });
      expect(task).toMatchObject({ id: 'a1', payload: '{"n":1}', payloadJson: { n: 1 }, priority: 0, attempts: 0 });
      const req = s.requests[0]!;
      expect(req.method).toBe('POST');
      expect(req.url).toBe('/v1/codeq/tasks');
      expect(req.headers['authorization']).toBe('Bearer secret');
      expect(JSON.parse(req.body)).toEqual({ command: 'x', payload: { n: 1 }, idempotencyKey: 'k' });
    } finally {
      await t.close();
      await s.close();
    }
  });

  it('keeps a path prefix of the base URL', async () => {
    const s = await fakeServer((_q, _b, res) => json(res, 200, TASK));
    const t = new HttpTransport({ baseUrl: s.url + '/proxy/codeq', token: 't' });
    try {
      await t.getTask('a 1');
      expect(s.requests[0]!.url).toBe('/proxy/codeq/v1/codeq/tasks/a%201');
    } finally {
      await t.close();
      await s.close();
    }
  });

  it('decodes error bodies into CodeqErrors with the catalogue code and httpStatus', async () => {
    const s = await fakeServer((_q, _b, res) => json(res, 409, { error: 'lease-mismatch', code: 'LEASE_NOT_HELD', requestId: 'r1' }));
    const t = new HttpTransport({ baseUrl: s.url, token: 't' });
    try {
      const err = await t.submitResult('a1', { status: 'COMPLETED', result: {}, leaseId: 'l' }).catch((e: unknown) => e);
      expect(CodeqError.is(err)).toBe(true);
      expect(err).toMatchObject({ code: 'LEASE_NOT_HELD', message: 'lease-mismatch', details: { httpStatus: 409, requestId: 'r1' } });
    } finally {
      await t.close();
      await s.close();
    }
  });

  it('maps 429 with Retry-After, and 502 with a text body, to retryable codes', async () => {
    let n = 0;
    const s = await fakeServer((_q, _b, res) => {
      if (n++ === 0) return json(res, 429, { error: 'rate limit exceeded', retryAfterSeconds: 2 }, { 'retry-after': '2' });
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('Bad Gateway');
    });
    const t = new HttpTransport({ baseUrl: s.url, token: 't' });
    try {
      await expect(t.getTask('a')).rejects.toMatchObject({ code: 'RATE_LIMITED', details: { retryAfterMs: 2000, httpStatus: 429 } });
      await expect(t.getTask('a')).rejects.toMatchObject({ code: 'UNAVAILABLE', message: 'Bad Gateway', details: { httpStatus: 502 } });
    } finally {
      await t.close();
      await s.close();
    }
  });

  it('answers null for a 204 claim and passes the wait', async () => {
    const s = await fakeServer((_q, _b, res) => (res.writeHead(204), res.end()));
    const t = new HttpTransport({ baseUrl: s.url, token: 't' });
    try {
      expect(await t.claim({ commands: ['x'], waitSeconds: 99, leaseSeconds: 5 })).toBeNull();
      expect(JSON.parse(s.requests[0]!.body)).toEqual({ commands: ['x'], leaseSeconds: 5, waitSeconds: 30 });
    } finally {
      await t.close();
      await s.close();
    }
  });

  it('reports connection refused as UNAVAILABLE with details.network', async () => {
    const s = await fakeServer(() => undefined);
    const url = s.url;
    await s.close();
    const t = new HttpTransport({ baseUrl: url, token: 't' });
    const err = await t.getTask('a').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', details: { network: true, errno: 'ECONNREFUSED' } });
    expect(isConnectionError(err)).toBe(true);
    expect((err as Error).message).toContain(url);
    await t.close();
  });

  it('times out and aborts', async () => {
    const s = await fakeServer(() => undefined); // never answers
    const t = new HttpTransport({ baseUrl: s.url, token: 't', timeoutMs: 100 });
    try {
      await expect(t.getTask('a')).rejects.toMatchObject({ code: 'UNAVAILABLE', details: { timeout: true } });
      const ac = new AbortController();
      const p = t.getTask('a', { signal: ac.signal, timeoutMs: 10_000 });
      ac.abort();
      await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    } finally {
      await t.close();
      await s.close();
    }
  });

  it('rejects a bad base URL and a missing token', () => {
    expect(() => new HttpTransport({ baseUrl: 'localhost:8080', token: 't' })).toThrow(/baseUrl/);
    expect(() => new HttpTransport({ baseUrl: 'http://x', token: '' })).toThrow(/token/);
  });
});
