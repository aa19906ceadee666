/**
 * `@codeq/testkit` as a user gets it: pack @codeq/proto, both SDKs and the testkit (workspace:*
 * rewritten to versions, as `pnpm publish` does), install the tarballs into an empty project with
 * pnpm OFFLINE (third-party dependencies from the local pnpm store, pinned to the workspace's
 * lockfile versions where a newer one would be picked), and run a small `node:test` file that starts
 * a throwaway server with `startCodeq()`, submits a task, completes it with a worker over gRPC, and
 * stops the server (its temp data directory must be gone afterwards). The server comes from this
 * checkout's build through `CODEQ_SERVER_ENTRY` (README: "Where the server comes from").
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packWorkspacePackages, run, SERVER_MAIN } from '../src/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const pnpm = join(root, 'scripts', 'pnpm.sh');
const dirs = ['packages/proto', 'packages/sdk-producer', 'packages/sdk-worker', 'packages/testkit'].map((d) => join(root, d));

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'codeq-testkit-empty-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const USER_TEST = `import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createProducer } from '@codeq/sdk-producer';
import { createWorker } from '@codeq/sdk-worker';
import { startCodeq } from '@codeq/testkit';

let codeq;
before(async () => { codeq = await startCodeq(); });
after(async () => {
  await codeq?.stop();
  console.log('STOPPED ' + JSON.stringify({ dataDir: codeq.dataDir }));
});

test('a worker completes a submitted task', async () => {
  assert.notEqual(codeq.adminToken, codeq.workerToken);
  const producer = createProducer({ baseUrl: codeq.url, token: codeq.adminToken });
  const worker = createWorker({
    grpcAddress: codeq.grpcWorker,
    token: codeq.workerToken,
    commands: ['email.send'],
    handler: async (task) => ({ sentTo: task.payloadJson.to }),
  }).start();
  try {
    const viaGrpc = createProducer({ grpcAddress: codeq.grpcProducer, token: codeq.adminToken });
    const task = await viaGrpc.submit('email.send', { to: 'a@example.com' });
    await viaGrpc.close();
    const { result } = await producer.waitForResult(task.id, { timeoutMs: 20000 });
    assert.equal(result.status, 'COMPLETED');
    assert.deepEqual(result.result, { sentTo: 'a@example.com' });
    // The worker token is not a producer token.
    const denied = await fetch(codeq.url + '/v1/codeq/tasks', { method: 'POST', headers: { authorization: 'Bearer ' + codeq.workerToken, 'content-type': 'application/json' }, body: '{"command":"x","payload":{}}' });
    assert.equal(denied.status, 401);
    console.log('RUNNING ' + JSON.stringify({ dataDir: codeq.dataDir, existed: true }));
  } finally {
    await worker.stop();
    await producer.close();
  }
});
`;

describe('@codeq/testkit from an empty project', () => {
  it('installs offline from packed tarballs and runs a node:test file that submits and completes a task', async () => {
    const tgz = await packWorkspacePackages(dirs, tmp);

    const app = join(tmp, 'app');
    await mkdir(app);
    const file = (name: string) => `file:${tgz[name]}`;
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { '@codeq/sdk-producer': file('@codeq/sdk-producer'), '@codeq/sdk-worker': file('@codeq/sdk-worker'), '@codeq/testkit': file('@codeq/testkit') } }));
    // The SDKs' @codeq/* dependencies come from the tarballs too; @types/node (a dependency of
    // @grpc/grpc-js, any version) is pinned to the workspace's, which the local store holds.
    const lock = await readFile(join(root, 'pnpm-lock.yaml'), 'utf8');
    const typesNode = /^ {2}'@types\/node@([0-9.]+)':/m.exec(lock)?.[1];
    expect(typesNode).toBeDefined();
    await writeFile(
      join(app, 'pnpm-workspace.yaml'),
      [
        'overrides:',
        `  "@codeq/proto": "${file('@codeq/proto')}"`,
        `  "@codeq/sdk-producer": "${file('@codeq/sdk-producer')}"`,
        `  "@types/node": "${typesNode}"`,
        'allowBuilds:',
        '  protobufjs: false',
        '',
      ].join('\n'),
    );
    const store = (await run('bash', [pnpm, 'store', 'path'], { cwd: root })).stdout.trim();
    await run('bash', [pnpm, 'install', '--offline', '--store-dir', store], { cwd: app, timeout: 180_000, env: { ...process.env, NODE_OPTIONS: '' } });
    for (const name of ['@codeq/sdk-producer', '@codeq/sdk-worker', '@codeq/testkit']) expect({ name, installed: existsSync(join(app, 'node_modules', name, 'package.json')) }).toEqual({ name, installed: true });

    await writeFile(join(app, 'worker.test.mjs'), USER_TEST);
    const { stdout } = await run(process.execPath, ['--test', '--test-reporter=spec', 'worker.test.mjs'], {
      cwd: app,
      timeout: 120_000,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', CODEQ_SERVER_ENTRY: SERVER_MAIN },
    });
    expect(stdout).toMatch(/a worker completes a submitted task/);
    expect(stdout).toMatch(/pass 1/);
    expect(stdout).toMatch(/fail 0/);
    const running = JSON.parse(/RUNNING (\{.*\})/.exec(stdout)![1]!) as { dataDir: string };
    const stopped = JSON.parse(/STOPPED (\{.*\})/.exec(stdout)![1]!) as { dataDir: string };
    expect(stopped.dataDir).toBe(running.dataDir);
    expect(existsSync(stopped.dataDir)).toBe(false); // stop() deleted the temp data directory
  }, 300_000);
});
