/**
 * `codeq` installed as a package (not from the workspace): pack @codeq/proto, both SDKs and the
 * CLI, `npm install` the tarballs into an empty project (third-party dependencies from the
 * registry) and run `node_modules/.bin/codeq`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from './support/cli.js';
import { api, packWorkspacePackages, run, startServer, TOKEN, type TestServer } from '@codeq/testkit';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const dirs = ['packages/proto', 'packages/sdk-producer', 'packages/sdk-worker', 'apps/cli'].map((d) => join(root, d));

let server: TestServer;
let tmp: string;
beforeAll(async () => {
  server = await startServer();
  tmp = await mkdtemp(join(tmpdir(), 'codeq-cli-installed-'));
});
afterAll(async () => {
  await server?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('installed codeq CLI', () => {
  it('runs from node_modules/.bin and talks to the server', async () => {
    const tarballs = Object.values(await packWorkspacePackages(dirs, tmp));
    const app = join(tmp, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: app, timeout: 150_000 });

    const bin = join(app, 'node_modules', '@codeq', 'cli', 'bin', 'run.js');
    const { stdout: binTarget } = await run('readlink', ['-f', join(app, 'node_modules', '.bin', 'codeq')]);
    expect(binTarget.trim()).toBe(bin);
    const env = { CODEQ_URL: server.url, CODEQ_TOKEN: TOKEN, CODEQ_CONFIG_DIR: join(tmp, 'cfg') };
    const help = await runCli(['--help'], { bin, env });
    expect(help.stdout).toContain('tasks');
    const sub = await runCli(['tasks', 'submit', 'installed.cli', '--payload', '{"ok":1}'], { bin, env });
    expect(sub.code).toBe(0);
    const id = sub.stdout.trim().split(' ').pop()!;
    expect((await api(server.url, 'GET', `/tasks/${id}`)).body).toMatchObject({ command: 'installed.cli' });
    const w = await runCli(['worker', 'start', '--commands', 'installed.cli', '--max-tasks', '1', '--', 'cat'], { bin, env });
    expect(w.code).toBe(0);
    expect((await api(server.url, 'GET', `/tasks/${id}/result`)).body.result.result).toEqual({ ok: 1 });
    // The gRPC transports of both SDKs work from the installed packages too.
    const genv = { ...env, CODEQ_TRANSPORT: 'grpc', CODEQ_PRODUCER_ADDRESS: server.producerAddress, CODEQ_WORKER_ADDRESS: server.workerAddress };
    const gsub = await runCli(['tasks', 'submit', 'installed.grpc', '--payload', '{"ok":2}'], { bin, env: genv });
    expect(gsub.code).toBe(0);
    const gid = gsub.stdout.trim().split(' ').pop()!;
    const gw = await runCli(['worker', 'start', '--commands', 'installed.grpc', '--max-tasks', '1', '--', 'cat'], { bin, env: genv });
    expect(gw.code).toBe(0);
    expect(gw.stderr).toContain(`server grpc://${server.workerAddress}`);
    expect((await api(server.url, 'GET', `/tasks/${gid}/result`)).body.result.result).toEqual({ ok: 2 });
  }, 180_000);
});
