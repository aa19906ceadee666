/** The README's example (examples/handles.mjs) runs as a user would run it, against a real server. */
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

it('examples/handles.mjs: a handle with the stored task, TaskCancelledError, schema validation', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['examples/handles.mjs'], {
    cwd: pkg,
    env: { ...process.env, NODE_OPTIONS: '', CODEQ_URL: server.url, CODEQ_PRODUCER_ADDR: server.producerAddress, CODEQ_TOKEN: TOKEN },
    timeout: 60_000,
  });
  expect(stdout.trim().split('\n')).toEqual([
    'submitted PENDING 5 {"subject":"Hello","to":"ana@example.com"}', // keys sorted: the server stores normalised JSON
    'cancelled true CANCELLED',
    "rejected payload of 'email.send' failed validation: to: Invalid email address",
  ]);
}, 90_000);
