/** The dashboard's server side: /ui static files, whoami, throughput (real server, real HTTP). */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { call, client, startServer, T, type RunningServer } from './harness.js';

const INDEX = '<!doctype html><title>codeQ test dashboard</title><div id="root"></div>';
const APP_JS = 'console.log("dashboard app");'.repeat(50);

async function fakeDashboard(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'codeq-dash-'));
  await mkdir(join(dir, 'assets'));
  await writeFile(join(dir, 'index.html'), INDEX);
  await writeFile(join(dir, 'assets', 'app-abc123.js'), APP_JS);
  await writeFile(join(dir, 'assets', 'app-abc123.js.br'), brotliCompressSync(APP_JS));
  await writeFile(join(dir, 'assets', 'app-abc123.js.gz'), gzipSync(APP_JS));
  return dir;
}

/** fetch() decodes bodies itself; read the raw bytes instead. */
async function raw(url: string, headers: Record<string, string> = {}) {
  const { request } = await import('undici');
  const r = await request(url, { headers });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, headers: r.headers as Record<string, string>, body };
}

describe('dashboard static files at /ui', () => {
  let s: RunningServer;
  let dir: string;
  beforeAll(async () => {
    dir = await fakeDashboard();
    s = await startServer({ dashboardDir: dir });
  });
  afterAll(async () => {
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves index.html at /ui, /ui/ and client routes, never cached', async () => {
    for (const path of ['/ui', '/ui/', '/ui/tasks', '/ui/tasks/some-id', '/ui/queues?x=1']) {
      const r = await call(s.url, 'GET', path);
      expect([path, r.status]).toEqual([path, 200]);
      expect(r.text).toBe(INDEX);
      expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(r.headers.get('cache-control')).toBe('no-cache');
      expect(r.headers.get('content-security-policy')).toContain("default-src 'self'");
    }
  });

  it('serves hashed assets with a long cache, precompressed by Accept-Encoding, with ETag revalidation', async () => {
    const url = `${s.url}/ui/assets/app-abc123.js`;
    const br = await raw(url, { 'accept-encoding': 'gzip, deflate, br' });
    expect(br.status).toBe(200);
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(br.headers['vary']).toBe('accept-encoding');
    expect(brotliDecompressSync(br.body).toString()).toBe(APP_JS);
    const gz = await raw(url, { 'accept-encoding': 'gzip;q=1, br;q=0' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).toString()).toBe(APP_JS);
    const plain = await raw(url, { 'accept-encoding': 'identity' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toBe(APP_JS);
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const again = await raw(url, { 'if-none-match': plain.headers['etag']! });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
  });

  it('answers 404 for a missing file and does not escape the directory', async () => {
    const r = await call(s.url, 'GET', '/ui/assets/missing-123.js');
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ code: 'NOT_FOUND', error: 'no such dashboard file: assets/missing-123.js' });
    const up = await call(s.url, 'GET', '/ui/..%2f..%2fpackage.json');
    expect(up.status).toBe(404);
    expect(up.text).not.toContain('@codeq/server');
  });
});

describe('the built @codeq/dashboard package (default location)', () => {
  // turbo builds @codeq/dashboard before the server (it is a dependency), so its dist/ is there.
  it('is found without CODEQ_DASHBOARD_DIR and served at /ui', async () => {
    const s = await startServer();
    try {
      const r = await call(s.url, 'GET', '/ui/');
      expect(r.status).toBe(200);
      expect(r.text).toContain('<div id="root"></div>');
      const js = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(r.text)?.[1];
      expect(js).toBeDefined();
      const asset = await raw(s.url + js!, { 'accept-encoding': 'br' });
      expect(asset.status).toBe(200);
      expect(asset.headers['content-encoding']).toBe('br');
      // The whole dashboard stays small: its script is well under 1 MB compressed.
      expect(asset.body.length).toBeLessThan(1024 * 1024);
    } finally {
      await s.stop();
    }
  });
});

describe('without a built dashboard', () => {
  it('the server runs and /ui answers 404 with a clear message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-nodash-'));
    const s = await startServer({ dashboardDir: dir });
    try {
      const r = await call(s.url, 'GET', '/ui/');
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('NOT_FOUND');
      expect(r.body.error).toContain('the dashboard is not installed');
      expect(r.body.error).toContain('CODEQ_DASHBOARD_DIR');
      expect((await client(s.url).create({ command: 'X', payload: {} })).status).toBe(202);
    } finally {
      await s.stop();
      await rm(dir, { recursive: true, force: true });
    }
    const off = await startServer({ dashboardDir: 'off' });
    try {
      const r = await call(off.url, 'GET', '/ui');
      expect(r.status).toBe(404);
      expect(r.body.error).toContain('turned off');
    } finally {
      await off.stop();
    }
  });
});

describe('whoami and throughput', () => {
  let s: RunningServer;
  beforeAll(async () => {
    s = await startServer({ dashboardDir: 'off' });
  });
  afterAll(() => s.stop());

  it('whoami reports tenant, subject and admin for producer and worker tokens, 401 without one', async () => {
    expect((await call(s.url, 'GET', '/v1/codeq/whoami', { token: T.producer })).body).toEqual({ tenantId: 'acme', subject: 'acme-producer', kind: 'producer', role: 'ADMIN', admin: true });
    expect((await call(s.url, 'GET', '/v1/codeq/whoami', { token: T.user })).body).toEqual({ tenantId: 'acme', subject: 'acme-user', kind: 'producer', role: 'USER', admin: false });
    expect((await call(s.url, 'GET', '/v1/codeq/whoami', { token: T.worker })).body).toMatchObject({ tenantId: 'acme', kind: 'worker', admin: false });
    const none = await call(s.url, 'GET', '/v1/codeq/whoami');
    expect(none.status).toBe(401);
    expect((await call(s.url, 'GET', '/v1/codeq/whoami', { token: 'nope' })).status).toBe(401);
  });

  it('whoami answers as the producer for a token both validators accept (npm start uses one token)', async () => {
    const both = await startServer({
      dashboardDir: 'off',
      producerAuthProvider: 'static',
      producerAuthConfig: { token: 'dev-token', subject: 'producer-dev', raw: { role: 'ADMIN', tid: 'dev-tenant' } },
      workerAuthProvider: 'static',
      workerAuthConfig: { token: 'dev-token', subject: 'worker-dev', scopes: ['codeq:claim'], eventTypes: ['*'], raw: { tid: 'dev-tenant' } },
    });
    try {
      const r = await call(both.url, 'GET', '/v1/codeq/whoami', { token: 'dev-token' });
      expect(r.body).toEqual({ tenantId: 'dev-tenant', subject: 'producer-dev', kind: 'producer', role: 'ADMIN', admin: true });
    } finally {
      await both.stop();
    }
  });

  it('throughput counts created, completed and failed tasks of the caller tenant only', async () => {
    const c = client(s.url);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await c.create({ command: 'TP', payload: { i } })).body.id);
    await c.create({ command: 'TP', payload: {}, runAt: new Date(Date.now() + 3600_000).toISOString() });
    for (const status of ['COMPLETED', 'FAILED']) {
      const claim = await c.claim({ commands: ['TP'], leaseSeconds: 30 });
      expect(claim.status).toBe(200);
      expect((await c.result(claim.body.id, { status, ...(status === 'FAILED' ? { error: 'boom' } : { result: {} }) })).status).toBe(200);
    }
    const r = await call(s.url, 'GET', '/v1/codeq/admin/throughput?minutes=5', { token: T.user });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ tenantId: 'acme', bucketSeconds: 10, minutes: 5, totals: { created: 4, completed: 1, failed: 1 } });
    expect(r.body.buckets).toHaveLength(30);
    const other = await call(s.url, 'GET', '/v1/codeq/admin/throughput', { token: T.globexProducer });
    expect(other.body).toMatchObject({ tenantId: 'globex', minutes: 15, totals: { created: 0, completed: 0, failed: 0 } });
    expect(other.body.buckets).toHaveLength(90);
  });

  it('throughput refuses bad minutes and worker tokens', async () => {
    for (const m of ['0', '61', 'x', '1.5']) {
      const r = await call(s.url, 'GET', `/v1/codeq/admin/throughput?minutes=${m}`, { token: T.producer });
      expect([m, r.status, r.body.code]).toEqual([m, 400, 'VALIDATION_FAILED']);
      expect(r.body.error).toBe('minutes must be an integer from 1 to 60');
    }
    expect((await call(s.url, 'GET', '/v1/codeq/admin/throughput', { token: T.worker })).status).toBe(401);
  });
});
