/** JWKS auth against a real local JWKS server with keys generated in the test. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { ALL_SCOPES, client, startServer, type RunningServer } from './harness.js';

interface Key {
  kid: string;
  alg: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  jwk: JWK;
}

async function makeKey(kid: string, alg = 'RS256'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, jwk };
}

let jwks: Server;
let jwksUrl: string;
let published: Key[] = [];
let fetches = 0;
let s: RunningServer;

const ISS = 'https://id.test';
const sign = (key: Key, claims: Record<string, unknown>, opts: { exp?: string | number; iss?: string; aud?: string | string[] } = {}) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .setIssuer(opts.iss ?? ISS)
    .setAudience(opts.aud ?? 'codeq')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '5m')
    .sign(key.privateKey);

beforeAll(async () => {
  jwks = createServer((req, res) => {
    fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: published.map((k) => k.jwk) }));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
});
afterAll(async () => {
  await new Promise<void>((r) => jwks.close(() => r()));
});
afterEach(async () => {
  await s?.stop();
});

async function start(skewSeconds = 0) {
  const cfg = (aud: string) => JSON.stringify({ jwksUrl, issuer: ISS, audience: aud, clockSkew: skewSeconds * 1e9, httpTimeout: 2e9, cooldownMs: 0 });
  s = await startServer({ producerAuthProvider: 'jwks', producerAuthConfig: cfg('codeq'), workerAuthProvider: 'jwks', workerAuthConfig: cfg('codeq-worker') });
  return client(s.url);
}

describe('jwks validator', () => {
  it('accepts valid RS256 and ES256 tokens and maps claims', async () => {
    const rsa = await makeKey('rsa-1');
    const ec = await makeKey('ec-1', 'ES256');
    published = [rsa, ec];
    const c = await start();
    const producer = await sign(rsa, { sub: 'svc-orders', tid: 'acme', role: 'admin' });
    const worker = await sign(ec, { sub: 'worker-7', tid: 'acme', scope: ALL_SCOPES.join(' '), eventTypes: ['EMAIL'] }, { aud: ['other', 'codeq-worker'] });
    const created = await c.create({ command: 'EMAIL', payload: { to: 'a@b' } }, producer);
    expect(created.status).toBe(202);
    expect(created.body.tenantId).toBe('acme');
    const claimed = await c.claim({ commands: ['EMAIL'] }, worker);
    expect(claimed.status).toBe(200);
    expect(claimed.body.workerId).toBe('worker-7');
    expect((await c.claim({ commands: ['OTHER'] }, worker)).status).toBe(403);
    expect((await c.call('GET', '/v1/codeq/admin/queues', { token: producer })).status).toBe(200);
  });

  it('rejects expired, wrong issuer, wrong audience, bad signature and unsigned tokens with clear 401s', async () => {
    const key = await makeKey('k1');
    const other = await makeKey('k1'); // same kid, different key: signature mismatch
    published = [key];
    const c = await start();
    const cases: [string, Promise<string> | string, RegExp][] = [
      ['expired', sign(key, { sub: 'a1', tid: 'acme' }, { exp: Math.floor(Date.now() / 1000) - 120 }), /token expired/],
      ['wrong issuer', sign(key, { sub: 'a1', tid: 'acme' }, { iss: 'https://evil' }), /invalid issuer: https:\/\/evil/],
      ['wrong audience', sign(key, { sub: 'a1', tid: 'acme' }, { aud: 'nope' }), /invalid audience: \[nope\]/],
      ['bad signature', sign(other, { sub: 'a1', tid: 'acme' }), /signature/],
      ['alg none', 'eyJhbGciOiJub25lIiwia2lkIjoiazEifQ.eyJzdWIiOiJhMSJ9.', /unexpected signing method/],
      ['garbage', 'not-a-jwt', /malformed/],
    ];
    for (const [name, token, message] of cases) {
      const r = await c.create({ command: 'x', payload: 1 }, await token);
      expect({ name, status: r.status }).toEqual({ name, status: 401 });
      expect(r.body.error).toMatch(message);
    }
  });

  it('applies the configured clock skew to expiry', async () => {
    const key = await makeKey('skew');
    published = [key];
    const c = await start(120);
    const token = await sign(key, { sub: 'a1', tid: 'acme' }, { exp: Math.floor(Date.now() / 1000) - 60 });
    expect((await c.create({ command: 'x', payload: 1 }, token)).status).toBe(202);
  });

  it('refreshes the key set for an unknown kid (key rotation)', async () => {
    const k1 = await makeKey('rot-1');
    const k2 = await makeKey('rot-2');
    published = [k1];
    const c = await start();
    expect((await c.create({ command: 'x', payload: 1 }, await sign(k1, { sub: 'a1', tid: 'acme' }))).status).toBe(202);
    const before = fetches;
    published = [k1, k2]; // rotation: the new key appears in the JWKS
    expect((await c.create({ command: 'x', payload: 1 }, await sign(k2, { sub: 'a1', tid: 'acme' }))).status).toBe(202);
    expect(fetches).toBeGreaterThan(before);
    const unknown = await makeKey('never-published');
    const r = await c.create({ command: 'x', payload: 1 }, await sign(unknown, { sub: 'a1', tid: 'acme' }));
    expect(r.status).toBe(401);
    expect(r.body.error).toMatch(/key not found/);
  });

  it('refuses to start without issuer or audience, naming the key', async () => {
    await expect(startServer({ workerAuthProvider: '', workerAuthConfig: '', workerJwksUrl: jwksUrl, workerIssuer: '' })).rejects.toThrow(/WORKER_ISSUER|workerIssuer/);
  });
});
