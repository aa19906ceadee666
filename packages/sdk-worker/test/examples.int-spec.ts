/** The README's example (examples/email.mjs) runs as a user would run it, against a real server. */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startServer, TOKEN, type TestServer } from '@codeq/testkit';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.dispose();
});

it('examples/email.mjs: handler map, events, typed results, TaskFailedError, worker-side schema', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['examples/email.mjs'], {
    cwd: pkg,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      CODEQ_URL: server.url,
      CODEQ_PRODUCER_ADDR: server.producerAddress,
      CODEQ_WORKER_ADDR: server.workerAddress,
      CODEQ_TOKEN: TOKEN,
    },
    timeout: 90_000,
  });
  expect(stdout.trim().split('\n')).toEqual([
    'email sent true',
    'report rows 30',
    'failed email.send - cannot deliver to bob@invalid.example',
    "failed report.build - VALIDATION_FAILED: payload of 'report.build' failed validation: month: Too big: expected number to be <=12",
    'completed email.send',
    'completed report.build',
    'failed email.send: cannot deliver to bob@invalid.example',
    expect.stringMatching(/^failed report\.build: VALIDATION_FAILED: payload of 'report\.build' failed validation: month: .*\[\{"path":\["month"\]/),
  ]);
}, 120_000);
