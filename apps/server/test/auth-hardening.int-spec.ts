/**
 * Issue 12 items 11 and 13: JWTs without exp are refused (unless allowed), error texts never echo
 * the JWKS URL or network errors, config errors never echo token material, a worker token with an
 * empty subject is refused; stream tokens are re-checked at exp; stream batches are capped.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '../src/config/config.js';
import { client, startServer, T, type RunningServer } from './harness.js';
import { is, producerStream, workerStream } from './grpc-clients.js';

const ISS = 'https://id.test';
let jwks: Server;
let jwksUrl: string;
let key: { privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']; jwk: JWK };
let s: RunningServer | null = null;

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  key = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' } };
  jwks = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [key.jwk] }));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
});
afterAll(async () => {
  await new Promise<void>((r) => jwks.close(() => r()));
});
afterEach(async () => {
  await s?.stop();
  s = null;
});

function sign(claims: Record<string, unknown>, opts: { exp?: number | string | null; kid?: string; aud?: string } = {}) {
  let j = new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'k1' }).setIssuer(ISS).setAudience(opts.aud ?? 'codeq').setIssuedAt();
  if (opts.exp !== null) j = j.setExpirationTime(opts.exp ?? '5m');
  return j.sign(key.privateKey);
}

async function start(extra: Record<string, unknown> = {}, url = jwksUrl) {
  const cfg = (aud: string) => JSON.stringify({ jwksUrl: url, issuer: ISS, audience: aud, clockSkew: 0, httpTimeout: 2e9, cooldownMs: 0, ...extra });
  s = await startServer({
    producerAuthProvider: 'jwks',
    producerAuthConfig: cfg('codeq'),
    workerAuthProvider: 'jwks',
    workerAuthConfig: cfg('codeq-worker'),
    workerStreamAddr: '127.0.0.1:0',
    producerStreamAddr: '127.0.0.1:0',
  });
  return client(s.url);
}

const producerClaims = { sub: 'p1', tid: 'acme', role: 'ADMIN' };
const workerClaims = { sub: 'w1', tid: 'acme', scope: 'codeq:claim codeq:result', eventTypes: ['*'] };

describe('auth hardening (issue 12 items 11, 13)', () => {
  it('refuses tokens without exp unless the validator allows them', async () => {
    const c = await start();
    const noExp = await sign(producerClaims, { exp: null });
    const r = await c.create({ command: 'x', payload: {} }, noExp);
    expect(r.status).toBe(401);
    expect(r.body.error).toMatch(/exp/);
    expect((await c.create({ command: 'x', payload: {} }, await sign(producerClaims))).status).toBe(202);
    await s!.stop();
    s = null;
    const c2 = await start({ allowMissingExp: true });
    expect((await c2.create({ command: 'x', payload: {} }, noExp)).status).toBe(202);
  });

  it('never echoes the JWKS URL or network errors', async () => {
    const c = await start();
    const unknownKid = await c.create({ command: 'x', payload: {} }, await sign(producerClaims, { kid: 'nope' }));
    expect(unknownKid.status).toBe(401);
    expect(unknownKid.text).not.toContain('127.0.0.1');
    expect(unknownKid.text).not.toContain('jwks.json');
    await s!.stop();
    s = null;
    // A JWKS endpoint that refuses connections.
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}/keys`;
    await new Promise<void>((r) => dead.close(() => r()));
    const c2 = await start({}, deadUrl);
    const r = await c2.create({ command: 'x', payload: {} }, await sign(producerClaims));
    expect(r.status).toBe(401);
    expect(r.text).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|\/keys/);
  });

  it('refuses a worker token with an empty subject', async () => {
    const c = await start();
    const r = await c.claim({ commands: ['x'] }, await sign({ ...workerClaims, sub: '' }, { aud: 'codeq-worker' }));
    expect(r.status).toBe(401);
    expect((await c.claim({ commands: ['x'] }, await sign(workerClaims, { aud: 'codeq-worker' }))).status).toBe(204);
  });

  it('ends a stream with UNAUTHENTICATED when its token expires', async () => {
    await start();
    const exp = Math.floor(Date.now() / 1000) + 2;
    const w = workerStream(s!.app.streams.workerPort);
    const p = producerStream(s!.app.streams.producerPort);
    try {
      w.send({ event: { $case: 'hello', hello: { token: await sign(workerClaims, { aud: 'codeq-worker', exp }), workerId: '' } } });
      p.send({ event: { $case: 'hello', hello: { token: await sign(producerClaims, { exp }) } } });
      await w.next(is('helloAck'));
      await p.next(is('helloAck'));
      const [ws, ps] = await Promise.all([w.status, p.status]);
      expect([ws.code, ps.code]).toEqual([grpc.status.UNAUTHENTICATED, grpc.status.UNAUTHENTICATED]);
      expect(ws.details).toMatch(/expired/);
      expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000 - 50);
    } finally {
      w.close();
      p.close();
    }
  }, 20_000);

  it('caps CreateTaskBatch and ResultBatch at 1000 entries (RESOURCE_EXHAUSTED)', async () => {
    s = await startServer({ workerStreamAddr: '127.0.0.1:0', producerStreamAddr: '127.0.0.1:0' });
    const p = producerStream(s.app.streams.producerPort);
    const w = workerStream(s.app.streams.workerPort);
    try {
      p.send({ event: { $case: 'hello', hello: { token: T.producer } } });
      await p.next(is('helloAck'));
      const base = { command: 'cap', payload: Buffer.from('{}'), priority: 0, webhook: '', maxAttempts: 0, idempotencyKey: '', delaySeconds: 0, traceParent: '', traceState: '' };
      p.send({ event: { $case: 'createBatch', createBatch: { tasks: Array.from({ length: 1000 }, (_, i) => ({ ...base, seq: String(i) })) } } });
      await p.next(is('createAckBatch'), 15_000);
      p.send({ event: { $case: 'createBatch', createBatch: { tasks: Array.from({ length: 1001 }, (_, i) => ({ ...base, seq: String(i) })) } } });
      expect((await p.status).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect((await client(s.url).call('GET', '/v1/codeq/admin/queues/cap', { token: T.producer })).body.ready).toBe(1000);
      w.send({ event: { $case: 'hello', hello: { token: T.worker, workerId: '' } } });
      await w.next(is('helloAck'));
      const r = { taskId: 'x', status: 'COMPLETED', resultJson: Buffer.from('{}'), error: '', leaseId: '' };
      w.send({ event: { $case: 'resultBatch', resultBatch: { results: Array.from({ length: 1001 }, () => r) } } });
      expect((await w.status).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      p.close();
      w.close();
    }
  }, 30_000);

  it('config errors never echo token material', () => {
    const secret = 'hunter2-very-secret-token';
    for (const env of [
      { PRODUCER_AUTH_PROVIDER: 'static', PRODUCER_AUTH_CONFIG: `{"token":${secret}}` },
      { WORKER_AUTH_PROVIDER: 'static', WORKER_AUTH_CONFIG: `{"token":"${secret}"` },
    ]) {
      let msg = '';
      try {
        loadConfig({ env });
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg).toMatch(/invalid JSON/);
      expect(msg).not.toContain('hunter2');
    }
  });
});
