/**
 * CommonJS apps can `require()` the published SDKs (Node ≥ 20.19 require(esm), through the
 * `default` export condition): pack @codeq/proto, @codeq/sdk-producer and @codeq/sdk-worker
 * (workspace:* rewritten to the version, as `pnpm publish` does), install the tarballs into an
 * empty CommonJS project, and run a `.cjs` script that submits a task and processes it with a
 * worker against the test server.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { api, startServer, TOKEN, type TestServer } from '@codeq/testkit';

const run = promisify(execFile);
const workerDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const producerDir = resolve(workerDir, '../sdk-producer');
const protoDir = resolve(workerDir, '../proto');

/** Copies a workspace package's publishable files, rewrites `workspace:` ranges, and `npm pack`s it. */
async function pack(dir: string, into: string, versions: Record<string, string>): Promise<string> {
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
  const stage = join(into, `stage-${pkg.name.replace(/\W/g, '_')}`);
  await mkdir(stage, { recursive: true });
  for (const f of ['dist', 'proto', 'README.md']) await cp(join(dir, f), join(stage, f), { recursive: true }).catch(() => undefined);
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [name, range] of Object.entries<string>(pkg[field] ?? {})) {
      if (range.startsWith('workspace:')) pkg[field][name] = versions[name] ?? range;
    }
  }
  delete pkg.devDependencies;
  delete pkg.scripts;
  await writeFile(join(stage, 'package.json'), JSON.stringify(pkg, null, 2));
  const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', into], { cwd: stage });
  return join(into, stdout.trim().split('\n').pop()!);
}

const version = async (dir: string) => JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')).version as string;

let server: TestServer;
let tmp: string;
beforeAll(async () => {
  server = await startServer();
  tmp = await mkdtemp(join(tmpdir(), 'codeq-packed-cjs-'));
});
afterAll(async () => {
  await server?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('packed SDKs from CommonJS', () => {
  it('require()s @codeq/sdk-producer (and /transport) and @codeq/sdk-worker, submits a task and processes it', async () => {
    const versions = { '@codeq/proto': await version(protoDir), '@codeq/sdk-producer': await version(producerDir) };
    const tarballs = [await pack(protoDir, tmp, {}), await pack(producerDir, tmp, versions), await pack(workerDir, tmp, versions)];
    for (const t of tarballs) {
      const { stdout } = await run('tar', ['-xzOf', t, 'package/package.json']);
      const pkg = JSON.parse(stdout) as { exports: Record<string, unknown> };
      for (const [sub, cond] of Object.entries(pkg.exports)) {
        if (typeof cond === 'object' && cond && 'import' in cond) expect({ sub, default: (cond as Record<string, string>)['default'] }).toEqual({ sub, default: (cond as Record<string, string>)['import'] });
      }
    }

    const app = join(tmp, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'commonjs' }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: app, timeout: 180_000 });

    await writeFile(
      join(app, 'main.cjs'),
      `'use strict';
const { createProducer, CodeqError } = require('@codeq/sdk-producer');
const { HttpTransport } = require('@codeq/sdk-producer/transport');
const { createWorker } = require('@codeq/sdk-worker');
async function main() {
  const producer = createProducer({ baseUrl: process.env.CODEQ_URL, token: process.env.CODEQ_TOKEN });
  const task = await producer.submit('packed.cjs', { from: 'require' });
  const worker = createWorker({
    grpcAddress: process.env.CODEQ_GRPC, token: process.env.CODEQ_TOKEN, commands: ['packed.cjs'],
    handler: (t) => ({ echoed: t.payloadJson.from }),
  }).start();
  const r = await producer.waitForResult(task.id, { timeoutMs: 20000 });
  await worker.stop();
  await producer.close();
  console.log(JSON.stringify({ id: task.id, result: r.result, codeq: typeof CodeqError.is, transport: typeof HttpTransport }));
}
main().catch((e) => { console.error(e); process.exit(1); });
`,
    );
    const { stdout, stderr } = await run(process.execPath, ['main.cjs'], { cwd: app, env: { ...process.env, NODE_OPTIONS: '', CODEQ_URL: server.url, CODEQ_GRPC: server.workerAddress, CODEQ_TOKEN: TOKEN }, timeout: 60_000 });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out).toMatchObject({ result: { status: 'COMPLETED', result: { echoed: 'require' } }, codeq: 'function', transport: 'function' });
    expect((await api(server.url, 'GET', `/tasks/${out.id}`)).body).toMatchObject({ command: 'packed.cjs', status: 'COMPLETED' });
    // Node 20 may warn that require(esm) is experimental; nothing else goes to stderr.
    expect(stderr.replace(/.*ExperimentalWarning.*\n?|.*--trace-warnings.*\n?/g, '').trim()).toBe('');
  }, 240_000);
});
