/**
 * The published artifacts work outside the workspace: pack @codeq/proto and @codeq/sdk-producer
 * (workspace:* rewritten to the version, as `pnpm publish` does), install both tarballs into an
 * empty project with npm (@codeq/proto's own dependencies come from the registry), and run a
 * plain ESM script that submits a task to the test server over HTTP and over the producer stream.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { api, packWorkspacePackages, run, startServer, TOKEN, type TestServer } from '@codeq/testkit';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = resolve(pkgDir, '../proto');

let server: TestServer;
let tmp: string;
beforeAll(async () => {
  server = await startServer();
  tmp = await mkdtemp(join(tmpdir(), 'codeq-packed-'));
});
afterAll(async () => {
  await server?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('packed @codeq/sdk-producer', () => {
  it('installs from tarballs into an empty project and submits a task', async () => {
    const tgz = await packWorkspacePackages([protoDir, pkgDir], tmp);
    const protoTgz = tgz['@codeq/proto']!;
    const sdkTgz = tgz['@codeq/sdk-producer']!;

    const app = join(tmp, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', protoTgz, sdkTgz], { cwd: app, timeout: 120_000 });

    await writeFile(
      join(app, 'main.mjs'),
      `import { createProducer, CodeqError } from '@codeq/sdk-producer';
const producer = createProducer({ baseUrl: process.env.CODEQ_URL, token: process.env.CODEQ_TOKEN });
const task = await producer.submit('packed.hello', { from: 'tarball' });
const err = await producer.get('missing').catch((e) => e);
const streamed = createProducer({ grpcAddress: process.env.CODEQ_GRPC, token: process.env.CODEQ_TOKEN });
const viaGrpc = await streamed.submit('packed.grpc', { from: 'stream' });
await streamed.close();
console.log(JSON.stringify({ id: task.id, payload: task.payloadJson, errorIsCodeq: CodeqError.is(err), code: err.code, grpcId: viaGrpc.id }));
await producer.close();
`,
    );
    const { stdout } = await run(process.execPath, ['main.mjs'], { cwd: app, env: { ...process.env, CODEQ_URL: server.url, CODEQ_GRPC: server.producerAddress, CODEQ_TOKEN: TOKEN } });
    const out = JSON.parse(stdout.trim());
    expect(out).toMatchObject({ payload: { from: 'tarball' }, errorIsCodeq: true, code: 'NOT_FOUND' });
    expect((await api(server.url, 'GET', `/tasks/${out.id}`)).body).toMatchObject({ command: 'packed.hello' });
    expect((await api(server.url, 'GET', `/tasks/${out.grpcId}`)).body).toMatchObject({ command: 'packed.grpc', payload: '{"from":"stream"}' });
    // The tarball holds the build output and the README, not the sources or tests.
    const { stdout: listing } = await run('tar', ['-tzf', sdkTgz]);
    expect(listing).toContain('package/dist/index.js');
    expect(listing).toContain('package/dist/transport/index.d.ts');
    expect(listing).toContain('package/README.md');
    expect(listing).not.toContain('package/src/');
    expect(listing).not.toMatch(/spec\./);
  }, 120_000);
});
