/**
 * CommonJS apps can `require()` the published packages (Node ≥ 20.19 require(esm), through the
 * `require` export condition, with `import` and `default` naming the same file): pack @codeq/proto,
 * @codeq/sdk-producer, @codeq/sdk-worker and @codeq/testkit (workspace:* rewritten to the version,
 * as `pnpm publish` does), install the tarballs into an empty CommonJS project, require() every
 * entry point of each, and run a `.cjs` script that submits a task and processes it with a worker
 * against the test server.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { api, packWorkspacePackages, run, startServer, TOKEN, type TestServer } from '@codeq/testkit';

const workerDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const producerDir = resolve(workerDir, '../sdk-producer');
const protoDir = resolve(workerDir, '../proto');
const testkitDir = resolve(workerDir, '../testkit');

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
  it('require()s every entry point of @codeq/proto, both SDKs and @codeq/testkit, submits a task and processes it', async () => {
    const tarballs = Object.values(await packWorkspacePackages([protoDir, producerDir, workerDir, testkitDir], tmp));
    const entries: string[] = []; // every JS entry point of every package, e.g. '@codeq/proto/errors'
    for (const t of tarballs) {
      const { stdout } = await run('tar', ['-xzOf', t, 'package/package.json']);
      const pkg = JSON.parse(stdout) as { name: string; private?: boolean; exports: Record<string, unknown> };
      expect({ name: pkg.name, private: pkg.private }).toEqual({ name: pkg.name, private: undefined });
      for (const [sub, cond] of Object.entries(pkg.exports)) {
        if (typeof cond !== 'object' || !cond) continue;
        const c = cond as Record<string, string>;
        expect({ sub, require: c['require'], default: c['default'] }).toEqual({ sub, require: c['import'], default: c['import'] });
        entries.push(sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`);
      }
    }
    expect(entries).toEqual(expect.arrayContaining(['@codeq/proto', '@codeq/proto/errors', '@codeq/proto/trace-context', '@codeq/sdk-producer', '@codeq/sdk-producer/transport', '@codeq/sdk-worker', '@codeq/testkit']));

    const app = join(tmp, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'commonjs' }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: app, timeout: 180_000 });

    // require() of every entry point from CommonJS gives a module with exports.
    await writeFile(join(app, 'each.cjs'), `'use strict';\nconst out = {};\nfor (const e of JSON.parse(process.argv[2])) out[e] = Object.keys(require(e)).length;\nconsole.log(JSON.stringify(out));\n`);
    const each = await run(process.execPath, ['each.cjs', JSON.stringify(entries)], { cwd: app, env: { ...process.env, NODE_OPTIONS: '' } });
    const counts = JSON.parse(each.stdout.trim().split('\n').pop()!) as Record<string, number>;
    expect(Object.keys(counts).sort()).toEqual([...entries].sort());
    for (const e of entries) expect({ e, hasExports: counts[e]! > 0 }).toEqual({ e, hasExports: true });

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
