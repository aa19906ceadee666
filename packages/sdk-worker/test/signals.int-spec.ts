/** A worker process with `handleSignals: true` drains in-flight tasks on SIGTERM and exits 0 (HTTP and gRPC). */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { api, startServer, TOKEN, type TestServer } from '@codeq/testkit';

const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/index.js');

let server: TestServer;
let dir: string;
beforeAll(async () => {
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: build @codeq/sdk-worker first`);
  server = await startServer();
  dir = await mkdtemp(join(tmpdir(), 'codeq-sig-'));
});
afterAll(async () => {
  await server?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('SIGTERM', () => {
  it.each(['http', 'grpc'])('over %s stops claiming, finishes the in-flight task, and exits cleanly', async (mode) => {
    const cmd = `sig.${mode}.drain`;
    const script = join(dir, `worker-${mode}.mjs`);
    await writeFile(
      script,
      `import { createWorker } from ${JSON.stringify(pathToFileURL(DIST).href)};
const w = createWorker({
  baseUrl: process.env.CODEQ_URL, grpcAddress: process.env.CODEQ_GRPC || undefined, token: process.env.CODEQ_TOKEN, commands: [process.env.CMD],
  handleSignals: true, drainTimeoutMs: 5000,
  onEvent: (e) => console.log('event', e.type),
  handler: async (t) => { console.log('started', t.id); await new Promise((r) => setTimeout(r, 800)); return { drained: true }; },
}).start();
await w.done;
console.log('exited cleanly');
`,
    );
    const first = await api(server.url, 'POST', '/tasks', { command: cmd, payload: {} });
    const env = { ...process.env, CODEQ_URL: server.url, CODEQ_GRPC: mode === 'grpc' ? server.workerAddress : '', CODEQ_TOKEN: TOKEN, CMD: cmd };
    const child = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const until = Date.now() + 10_000;
    while (!out.includes(`started ${first.body.id}`)) {
      if (Date.now() > until) throw new Error(`worker did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGTERM');
    const second = await api(server.url, 'POST', '/tasks', { command: cmd, payload: {} });
    expect(await exited).toBe(0);
    expect(out).toContain('exited cleanly');
    expect(out.trim().split('\n').filter((l) => l.startsWith('event')).map((l) => l.slice(6))).toEqual(['claimed', 'completed', 'stopped']);
    expect((await api(server.url, 'GET', `/tasks/${first.body.id}/result`)).body.result).toMatchObject({ status: 'COMPLETED', result: { drained: true } });
    expect((await api(server.url, 'GET', `/tasks/${second.body.id}`)).body.status).toBe('PENDING');
  }, 30_000);
});
