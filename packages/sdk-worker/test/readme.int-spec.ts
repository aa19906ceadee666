/**
 * The root README's SDK examples run as a new user would run them: the code blocks are read from
 * README.md (so an edit that breaks them fails here), saved in this package (where both SDKs and the
 * testkit resolve, as the README says), pointed at a real server instead of localhost:8080/9091/9092,
 * and run with `node`.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startServer, TOKEN, type TestServer } from '@codeq/testkit';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(pkg, '../../README.md'), 'utf8');

/** The fenced js block of the README whose first line is `// <name> …`. */
function block(name: string): string {
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const found = blocks.filter((b) => b.startsWith(`// ${name} `));
  if (found.length !== 1) throw new Error(`README.md: expected one js block starting with "// ${name}", found ${found.length}`);
  return found[0]!;
}

let server: TestServer;
let dir: string;
beforeAll(async () => {
  server = await startServer();
  dir = mkdtempSync(join(pkg, '.readme-run-'));
});
afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await server?.dispose();
});

function save(name: string): string {
  const code = block(name)
    .replaceAll("'localhost:9091'", `'${server.workerAddress}'`)
    .replaceAll("'localhost:9092'", `'${server.producerAddress}'`)
    .replaceAll("'http://localhost:8080'", `'${server.url}'`)
    .replaceAll("'dev-token'", `'${TOKEN}'`);
  const file = join(dir, name);
  writeFileSync(file, code);
  return file;
}

it('"SDKs and CLI": worker.mjs and producer.mjs work as printed', async () => {
  const worker = spawn(process.execPath, [save('worker.mjs')], { cwd: pkg, env: { ...process.env, NODE_OPTIONS: '' } });
  let out = '';
  let err = '';
  worker.stdout.on('data', (d: Buffer) => (out += d.toString()));
  worker.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => worker.on('exit', (code) => resolve(code)));
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [save('producer.mjs')], {
      cwd: pkg,
      env: { ...process.env, NODE_OPTIONS: '' },
      timeout: 60_000,
    });
    const lines = stdout.trim().split('\n');
    // "the stored task: … PENDING 5", then the typed result
    expect(lines[0]).toMatch(/^[0-9a-f-]{36} PENDING 5$/);
    expect(lines[1]).toBe("{ processed: '42' }");
    expect(lines).toHaveLength(2);
    const id = lines[0]!.split(' ')[0]!;
    // the worker saw it complete (its event handler prints), then Ctrl-C drains and exits 0
    for (let i = 0; i < 100 && !out.includes(`completed ${id}`); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain(`completed ${id}`);
  } finally {
    worker.kill('SIGINT');
  }
  expect(await exited).toBe(0);
  expect(err).toBe('');
}, 120_000);

it('"Testing your workers with @codeq/testkit": worker.test.mjs passes under node --test', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--test', save('worker.test.mjs')], {
    cwd: pkg,
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 90_000,
  });
  expect(stdout).toMatch(/# pass 1\b/);
  expect(stdout).toMatch(/# fail 0\b/);
}, 120_000);
