import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { BIN, runCli } from './support/cli.js';
import { api, startServer, TOKEN, type TestServer } from '@codeq/testkit';

let server: TestServer;
let configDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  server = await startServer();
  configDir = await mkdtemp(join(tmpdir(), 'codeq-cli-config-'));
  env = { CODEQ_URL: server.url, CODEQ_TOKEN: TOKEN, CODEQ_CONFIG_DIR: configDir };
});
afterAll(async () => {
  await server?.dispose();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

const cli = (args: string[], extra: { env?: Record<string, string | undefined>; input?: string } = {}) => runCli(args, { env: { ...env, ...extra.env }, ...(extra.input !== undefined ? { input: extra.input } : {}) });
const lastWord = (s: string) => s.trim().split(/\s+/).pop() ?? '';

describe('codeq tasks', () => {
  it('submit prints "[OK] Task created: <id>" and --json prints the task', async () => {
    const r = await cli(['tasks', 'submit', 'cli.email', '--payload', '{"to":"a@example.com"}', '--priority', '5', '--max-attempts', '3']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^\[OK\] Task created: [0-9a-f-]{36}\n$/);
    const id = lastWord(r.stdout);
    expect((await api(server.url, 'GET', `/tasks/${id}`)).body).toMatchObject({ command: 'cli.email', priority: 5, maxAttempts: 3, payload: '{"to":"a@example.com"}' });

    const j = await cli(['tasks', 'submit', 'cli.email', '--payload', '[1,2]', '--delay', '60', '--json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ command: 'cli.email', payload: '[1,2]', payloadJson: [1, 2], lastKnownLocation: 'DELAYED_ZSET' });
  });

  it('submit reads the payload from stdin and from a file, and dedupes on --idempotency-key', async () => {
    const a = await cli(['tasks', 'submit', 'cli.stdin', '--idempotency-key', 'cli-k1', '--json'], { input: '{"from":"stdin"}\n' });
    expect(JSON.parse(a.stdout)).toMatchObject({ payloadJson: { from: 'stdin' } });
    const b = await cli(['tasks', 'submit', 'cli.stdin', '--idempotency-key', 'cli-k1', '--json'], { input: '{"from":"stdin"}' });
    expect(JSON.parse(b.stdout).id).toBe(JSON.parse(a.stdout).id);
    const c = await cli(['tasks', 'submit', 'cli.stdin', '--payload-file', '-', '--json'], { input: '"plain"' });
    expect(JSON.parse(c.stdout).payload).toBe('"plain"');
    const upstream = await cli(['task', 'create', '--event', 'cli.upstream', '--payload', '{}']);
    expect(upstream.stdout).toMatch(/^\[OK\] Task created: /);
    // Upstream's zero values mean "not set": the server's defaults apply.
    const zero = await cli(['task', 'create', '--event', 'cli.upstream', '--payload', '{}', '--max-attempts', '0', '--delay-seconds', '0', '--priority', '0']);
    expect(zero.code).toBe(0);
    expect((await api(server.url, 'GET', `/tasks/${lastWord(zero.stdout)}`)).body).toMatchObject({ maxAttempts: 5, status: 'PENDING', lastKnownLocation: 'PENDING_LIST' });
  });

  it('get prints a readable block', async () => {
    const id = lastWord((await cli(['tasks', 'submit', 'cli.get', '--payload', '{"n":1}'])).stdout);
    const r = await cli(['tasks', 'get', id]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`id         ${id}`);
    expect(r.stdout).toContain('status     PENDING');
    expect(r.stdout).toContain('attempts   0/5');
    expect(r.stdout).toContain('payload    {"n":1}');
  });

  it('get shows the progress and logs prints the task log (issue 17)', async () => {
    const id = lastWord((await cli(['tasks', 'submit', 'cli.progress', '--payload', '{}'])).stdout);
    const claimed = JSON.parse((await cli(['tasks', 'claim', '--commands', 'cli.progress', '--json'])).stdout);
    expect(claimed.id).toBe(id);
    expect((await cli(['tasks', 'get', id])).stdout).not.toMatch(/^progress/m);
    expect((await api(server.url, 'POST', `/tasks/${id}/progress`, { progress: { done: 3, total: 7 }, leaseId: claimed.leaseId })).status).toBe(200);
    const lines = ['fetching', { level: 'warn', message: 'slow mirror' }];
    expect((await api(server.url, 'POST', `/tasks/${id}/logs`, { lines, leaseId: claimed.leaseId })).status).toBe(200);
    const g = await cli(['tasks', 'get', id]);
    expect(g.stdout).toMatch(/^progress\s+\{"done":3,"total":7\}$/m);
    const l = await cli(['tasks', 'logs', id]);
    expect(l.code).toBe(0);
    expect(l.stdout.trim().split('\n').map((x) => x.replace(/^\S+\s+/, ''))).toEqual(['#1  INFO   fetching', '#1  WARN   slow mirror']);
    const j = JSON.parse((await cli(['tasks', 'logs', id, '--after', '1', '--json'])).stdout);
    expect(j).toEqual([expect.objectContaining({ n: 2, attempt: 1, level: 'warn', message: 'slow mirror' })]);
    // --follow ends once the task has finished, after printing its last lines.
    await api(server.url, 'POST', `/tasks/${id}/logs`, { lines: ['done'], leaseId: claimed.leaseId });
    await api(server.url, 'POST', `/tasks/${id}/result`, { status: 'COMPLETED', result: {}, leaseId: claimed.leaseId });
    const f = await cli(['tasks', 'logs', id, '--follow', '--after', '2']);
    expect(f.stdout.trim()).toMatch(/#1 {2}INFO {3}done$/);
    expect((await cli(['tasks', 'logs', '00000000-0000-0000-0000-000000000000'])).code).toBe(4);
  });

  it('claim → heartbeat → result → wait, fenced by the lease id', async () => {
    const id = lastWord((await cli(['tasks', 'submit', 'cli.flow', '--payload', '{}'])).stdout);
    const claimed = JSON.parse((await cli(['tasks', 'claim', '--commands', 'other,cli.flow', '--lease', '60', '--json'])).stdout);
    expect(claimed).toMatchObject({ id, status: 'IN_PROGRESS', attempts: 1 });
    const leaseId: string = claimed.leaseId;

    const hb = await cli(['tasks', 'heartbeat', id, '--extend', '120', '--lease-id', leaseId]);
    expect(hb.stdout).toMatch(new RegExp(`^\\[OK\\] Lease extended: ${id} until \\d{4}-`));

    const res = await cli(['tasks', 'result', id, '--status', 'COMPLETED', '--result', '{"ok":true}', '--lease-id', leaseId]);
    expect(res).toMatchObject({ code: 0, stdout: `[OK] Result recorded: ${id} COMPLETED\n` });
    const again = await cli(['tasks', 'result', id, '--status', 'COMPLETED', '--result', '{"ok":true}', '--lease-id', leaseId]);
    expect(again.code).toBe(0); // same result, same lease: replayed

    const w = await cli(['tasks', 'wait', id, '--timeout', '5']);
    expect(w.code).toBe(0);
    expect(w.stdout).toContain('status       COMPLETED');
    expect(w.stdout).toContain('result       {"ok":true}');
    const wj = JSON.parse((await cli(['tasks', 'wait', id, '--json'])).stdout);
    expect(wj.result).toMatchObject({ status: 'COMPLETED', result: { ok: true } });
  });

  it('claim with nothing ready says so on stderr (null with --json) and exits 0', async () => {
    const r = await cli(['tasks', 'claim', '--commands', 'cli.empty']);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: 'No task available\n' });
    const j = await cli(['tasks', 'claim', '--commands', 'cli.empty', '--json']);
    expect(j).toMatchObject({ code: 0, stdout: 'null\n' });
  });

  it('nack and abandon give the task back', async () => {
    const id = lastWord((await cli(['tasks', 'submit', 'cli.back', '--payload', '{}'])).stdout);
    let c = JSON.parse((await cli(['tasks', 'claim', '--commands', 'cli.back', '--json'])).stdout);
    const n = await cli(['tasks', 'nack', id, '--delay', '1', '--reason', 'later', '--lease-id', c.leaseId]);
    expect(n).toMatchObject({ code: 0, stdout: `[OK] Task nacked: ${id} (requeued, retry in 1s)\n` });
    c = JSON.parse((await cli(['tasks', 'claim', '--commands', 'cli.back', '--wait', '5', '--json'])).stdout);
    expect(c).toMatchObject({ id, attempts: 2 });
    const a = await cli(['tasks', 'abandon', id, '--lease-id', c.leaseId]);
    expect(a).toMatchObject({ code: 0, stdout: `[OK] Task abandoned: ${id} (requeued)\n` });
    expect((await api(server.url, 'GET', `/tasks/${id}`)).body).toMatchObject({ status: 'PENDING', attempts: 2 });
    // The old lease no longer holds: conflict, exit 5.
    const stale = await cli(['tasks', 'result', id, '--status', 'FAILED', '--error', 'x', '--lease-id', c.leaseId]);
    expect(stale.code).toBe(5);
    expect(stale.stderr).toContain('lease-mismatch (HTTP 409)');
  });

  it('wait gives up with exit 4 at the timeout', async () => {
    const id = lastWord((await cli(['tasks', 'submit', 'cli.nowait', '--payload', '{}'])).stdout);
    const r = await cli(['tasks', 'wait', id, '--timeout', '1']);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`no result for task ${id}`);
  });

  it('wait exits 8 when the task ended FAILED, still printing the result', async () => {
    const id = lastWord((await cli(['tasks', 'submit', 'cli.failing', '--payload', '{}'])).stdout);
    const c = JSON.parse((await cli(['tasks', 'claim', '--commands', 'cli.failing', '--json'])).stdout);
    expect((await cli(['tasks', 'result', id, '--status', 'FAILED', '--error', 'disk full', '--lease-id', c.leaseId])).code).toBe(0);
    const r = await cli(['tasks', 'wait', id, '--timeout', '5']);
    expect(r.code).toBe(8);
    expect(r.stdout).toMatch(/status\s+FAILED/);
    expect(r.stdout).toMatch(/error\s+disk full/);
    expect(r.stderr).toContain(`[ERROR] Task ${id} ended FAILED: disk full`);
    const j = await cli(['tasks', 'wait', id, '--json']);
    expect(j.code).toBe(8);
    expect(JSON.parse(j.stdout)).toMatchObject({ result: { status: 'FAILED', error: 'disk full' } });
  });

  it('wait exits 9 when the task was CANCELLED (pending, or running when its cancellation lands)', async () => {
    const id = lastWord((await cli(['tasks', 'submit', 'cli.cancelled', '--payload', '{}'])).stdout);
    expect((await cli(['tasks', 'cancel', id])).code).toBe(0);
    const r = await cli(['tasks', 'wait', id, '--timeout', '5']);
    expect(r.code).toBe(9);
    expect(r.stdout).toMatch(/status\s+CANCELLED/);
    expect(r.stderr).toContain(`[WARN] Task ${id} was CANCELLED`);
    const j = await cli(['tasks', 'wait', id, '--json']);
    expect(j.code).toBe(9);
    expect(JSON.parse(j.stdout)).toMatchObject({ result: { status: 'CANCELLED' } });

    // A running task: the cancel is requested, the worker's next heartbeat ends it CANCELLED.
    const running = lastWord((await cli(['tasks', 'submit', 'cli.cancelled2', '--payload', '{}'])).stdout);
    const c = JSON.parse((await cli(['tasks', 'claim', '--commands', 'cli.cancelled2', '--json'])).stdout);
    expect((await cli(['tasks', 'cancel', running])).code).toBe(0);
    await cli(['tasks', 'heartbeat', running, '--lease-id', c.leaseId]);
    expect((await cli(['tasks', 'wait', running, '--timeout', '5'])).code).toBe(9);
  });
});

describe('codeq over the gRPC streams (--transport grpc)', () => {
  it('tasks submit goes over the producer stream (flag, env, or profile)', async () => {
    const r = await cli(['tasks', 'submit', 'cli.grpc', '--payload', '{"via":"flag"}', '--grpc-address', server.producerAddress]);
    expect(r.code).toBe(0);
    const id = lastWord(r.stdout);
    expect(r.stdout).toBe(`[OK] Task created: ${id}\n`);
    expect((await api(server.url, 'GET', `/tasks/${id}`)).body).toMatchObject({ command: 'cli.grpc', payload: '{"via":"flag"}' });
    const j = await cli(['tasks', 'submit', 'cli.grpc', '--payload', '{"via":"env"}', '--json'], { env: { CODEQ_TRANSPORT: 'grpc', CODEQ_PRODUCER_ADDRESS: server.producerAddress } });
    expect(JSON.parse(j.stdout)).toMatchObject({ command: 'cli.grpc', status: 'PENDING', payloadJson: { via: 'env' } });
    // --transport http wins over the environment.
    const h = await cli(['tasks', 'submit', 'cli.grpc', '--payload', '{}', '--transport', 'http'], { env: { CODEQ_TRANSPORT: 'grpc', CODEQ_PRODUCER_ADDRESS: '127.0.0.1:9' } });
    expect(h.code).toBe(0);
  });

  it('worker start runs on the worker stream', async () => {
    const a = lastWord((await cli(['tasks', 'submit', 'cli.gcat', '--payload', '{"n":1}'])).stdout);
    const b = lastWord((await cli(['tasks', 'submit', 'cli.gcat', '--payload', '{"n":2}'])).stdout);
    const r = await cli(['worker', 'start', '--commands', 'cli.gcat', '--max-tasks', '2', '--concurrency', '2', '--transport', 'grpc', '--grpc-address', server.workerAddress, '--', 'cat']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`[INFO] Worker started: commands cli.gcat, concurrency 2, server grpc://${server.workerAddress}`);
    expect(r.stderr).toContain('[INFO] Worker stopped: 2 completed, 0 failed, 0 nacked');
    expect((await api(server.url, 'GET', `/tasks/${a}/result`)).body.result.result).toEqual({ n: 1 });
    expect((await api(server.url, 'GET', `/tasks/${b}/result`)).body.result.result).toEqual({ n: 2 });
  });

  it('errors keep their exit codes: bad token 3, stream not listening 7 with a hint, bad transport 2', async () => {
    const t = await cli(['worker', 'start', '--commands', 'x', '--token', 'bad', '--grpc-address', server.workerAddress, '--', 'cat']);
    expect(t.code).toBe(3);
    expect(t.stderr).toContain('auth failed: invalid token');
    const d = await cli(['tasks', 'submit', 'x', '--payload', '{}', '--grpc-address', '127.0.0.1:9', '--json']);
    expect(d.code).toBe(7);
    expect(JSON.parse(d.stdout).error).toMatchObject({
      code: 'UNAVAILABLE',
      message: 'cannot reach the codeQ server at grpc://127.0.0.1:9: connection refused',
      hint: expect.stringContaining("Is the server's producer stream listening at 127.0.0.1:9 (PRODUCER_STREAM_ADDR)?"),
    });
    expect((await cli(['tasks', 'submit', 'x', '--payload', '{}'], { env: { CODEQ_TRANSPORT: 'carrier-pigeon' } })).code).toBe(2);
    expect((await cli(['tasks', 'submit', 'x', '--transport', 'smoke'])).code).toBe(2);
  });
});

describe('codeq errors and exit codes', () => {
  it('not found → 4, with a JSON error body on stdout under --json', async () => {
    const r = await cli(['tasks', 'get', 'nope']);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('[ERROR] not found (HTTP 404)\n');
    const j = await cli(['tasks', 'get', 'nope', '--json']);
    expect(j.code).toBe(4);
    expect(JSON.parse(j.stdout)).toMatchObject({ error: { code: 'NOT_FOUND', message: 'not found', httpStatus: 404 } });
  });

  it('bad token → 3 with a hint; no token → 3', async () => {
    const r = await cli(['tasks', 'get', 'x', '--token', 'wrong']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('invalid token (HTTP 401)');
    expect(r.stderr).toContain('CODEQ_TOKEN');
    const none = await cli(['tasks', 'get', 'x'], { env: { CODEQ_TOKEN: undefined } });
    expect(none.code).toBe(3);
    expect(none.stderr).toContain('token is required');
  });

  it('server down → 7 with "is the server running"', async () => {
    const r = await cli(['tasks', 'submit', 'x', '--payload', '{}'], { env: { CODEQ_URL: 'http://127.0.0.1:9' } });
    expect(r.code).toBe(7);
    // Upstream's `[ERROR] <message>` line, never wrapped at the terminal width (scripts grep it).
    expect(r.stderr).toMatch(/^\[ERROR\] cannot reach the codeQ server at http:\/\/127\.0\.0\.1:9: connection refused\n/);
    expect(r.stderr).toContain('\nIs the server running at http://127.0.0.1:9? Set --url, CODEQ_URL or `codeq config set url <url>`.\n');
  });

  it('bad input → 2', async () => {
    expect((await cli(['tasks', 'submit', 'x', '--payload', '{bad'])).code).toBe(2);
    expect((await cli(['tasks', 'submit', 'x', '--priority', '12'])).code).toBe(2);
    expect((await cli(['tasks', 'result', 'x'])).code).toBe(2); // missing --status
    const v = await cli(['tasks', 'submit', 'x', '--webhook', 'ftp://x', '--json']);
    expect(v.code).toBe(2);
    expect(JSON.parse(v.stdout).error).toMatchObject({ code: 'VALIDATION_FAILED', message: 'invalid webhook url' });
  });
});

describe("upstream's CLI names", () => {
  it('unknown flag and bad flag value: "[ERROR] <message>" on stderr, exit 2', async () => {
    const u = await cli(['tasks', 'submit', 'x', '--bogus']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/^\[ERROR\] Nonexistent flag: --bogus\n/);
    const v = await cli(['tasks', 'submit', 'x', '--priority', '12']);
    expect(v.code).toBe(2);
    expect(v.stderr).toMatch(/^\[ERROR\] Parsing --priority: Expected an integer less than or equal to 9 but received: 12\n/);
    const p = await cli(['tasks', 'submit', 'x', '--payload', '{bad']);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/^\[ERROR\] invalid payload JSON: /);
  });

  it('help <command> shows that command\'s help; an unknown command is "[ERROR] unknown command", exit 2', async () => {
    const h = await cli(['help', 'tasks', 'submit']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('$ codeq tasks submit [COMMAND]');
    const u = await cli(['tasks', 'frobnicate', 'x']);
    expect(u).toMatchObject({ code: 2, stdout: '' });
    expect(u.stderr).toMatch(/^\[ERROR\] unknown command: codeq tasks frobnicate x\n/);
  });

  it('tasks submit without a payload does not hang on a standard input that stays open (a script\'s execFile): {} after 1.5 s', async () => {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((ok) => {
      // execFile never closes the child's stdin.
      const child = execFile(process.execPath, [BIN, 'tasks', 'submit', 'cli.open-stdin'], { env: { ...env, PATH: process.env['PATH'] ?? '', NO_COLOR: '1' }, timeout: 20_000 }, (err, stdout, stderr) =>
        ok({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
      );
      expect(child.stdin).not.toBeNull();
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('[WARN] No payload on standard input after 1.5 s: submitting {}');
    expect((await api(server.url, 'GET', `/tasks/${lastWord(r.stdout)}`)).body).toMatchObject({ command: 'cli.open-stdin', payload: '{}' });
  });

  it('tasks submit reads a shell pipe to its end however slow the writer (never {} in place of the payload)', async () => {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((ok) => {
      // A shell pipeline gives the CLI a FIFO whose first byte arrives after 2.5 s (> the 1.5 s socket limit).
      const script = `(sleep 2.5; printf '{"slow":true}') | "${process.execPath}" "${BIN}" tasks submit cli.slow-pipe`;
      execFile('sh', ['-c', script], { env: { ...env, PATH: process.env['PATH'] ?? '', NO_COLOR: '1' }, timeout: 20_000 }, (err, stdout, stderr) =>
        ok({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
      );
    });
    expect(r.stderr).not.toContain('[WARN]');
    expect(r.code).toBe(0);
    expect((await api(server.url, 'GET', `/tasks/${lastWord(r.stdout)}`)).body).toMatchObject({ command: 'cli.slow-pipe', payload: '{"slow":true}' });
  });

  it('CODEQ_PRODUCER_TOKEN / CODEQ_WORKER_TOKEN (and --producer-token / --worker-token) pick the token by command role', async () => {
    const roles = { CODEQ_TOKEN: undefined, CODEQ_PRODUCER_TOKEN: TOKEN, CODEQ_WORKER_TOKEN: 'not-the-token' };
    const created = await cli(['task', 'create', '--event', 'cli.roles', '--payload', '{}'], { env: roles });
    expect(created.code).toBe(0);
    const id = lastWord(created.stdout);
    // claim is a worker command: it reads CODEQ_WORKER_TOKEN first, which is wrong here.
    expect((await cli(['tasks', 'claim', '--events', 'cli.roles'], { env: roles })).code).toBe(3);
    const swapped = { CODEQ_TOKEN: undefined, CODEQ_PRODUCER_TOKEN: 'not-the-token', CODEQ_WORKER_TOKEN: TOKEN };
    expect((await cli(['task', 'create', '--event', 'cli.roles', '--payload', '{}'], { env: swapped })).code).toBe(3);
    const claimed = await cli(['tasks', 'claim', '--events', 'cli.roles', '--json'], { env: swapped });
    expect(JSON.parse(claimed.stdout)).toMatchObject({ id, status: 'IN_PROGRESS' });
    const none = { CODEQ_TOKEN: undefined };
    expect((await cli(['task', 'create', '--event', 'cli.roles', '--payload', '{}', '--producer-token', TOKEN], { env: none })).code).toBe(0);
    expect((await cli(['tasks', 'claim', '--events', 'cli.roles', '--worker-token', TOKEN], { env: none })).code).toBe(0);
  });

  it('task result <id> prints the stored result as JSON without waiting (no result yet exits 4); task get <id> prints the server JSON', async () => {
    const id = lastWord((await cli(['tasks', 'submit', 'cli.upstream-result', '--payload', '{}'])).stdout);
    const early = await cli(['task', 'result', id]);
    expect(early.code).toBe(4);
    expect(early.stderr).toContain('(HTTP 404)');
    const c = JSON.parse((await cli(['tasks', 'claim', '--commands', 'cli.upstream-result', '--json'])).stdout);
    await cli(['tasks', 'result', id, '--status', 'COMPLETED', '--result', '{"n":7}', '--lease-id', c.leaseId]);
    const r = await cli(['task', 'result', id]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ result: { taskId: id, status: 'COMPLETED', result: { n: 7 } }, task: { id, status: 'COMPLETED' } });
    // task get prints the server's task JSON (the fields of GET /tasks/:id; a zero priority is spelled out).
    const g = await cli(['task', 'get', id]);
    expect(g.code).toBe(0);
    const printed = JSON.parse(g.stdout) as Record<string, unknown>;
    expect(printed).toMatchObject((await api(server.url, 'GET', `/tasks/${id}`)).body as Record<string, unknown>);
    expect(Object.keys(printed)).not.toEqual(expect.arrayContaining(['data']));
    expect(Object.keys(printed)).not.toEqual(expect.arrayContaining(['payloadJson']));
    expect((await cli(['task', 'get', 'nope'])).code).toBe(4);
  });
});

describe("upstream's worker start --ack (no program)", () => {
  it('--ack complete records {"handledBy":"codeq","ts"} for each claimed task; --ack abandon gives the task back', async () => {
    const ids = [];
    for (let i = 0; i < 2; i++) ids.push(lastWord((await cli(['tasks', 'submit', 'cli.ack', '--payload', '{}'])).stdout));
    const r = await cli(['worker', 'start', '--events', 'cli.ack', '--ack', 'complete', '--max-tasks', '2', '--wait-seconds', '2']);
    expect(r.code).toBe(0);
    for (const id of ids) {
      expect(r.stdout).toContain(`[OK] Task claimed: ${id} (cli.ack)`);
      const res = await api(server.url, 'GET', `/tasks/${id}/result`);
      expect(res.body).toMatchObject({ result: { status: 'COMPLETED', result: { handledBy: 'codeq', ts: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) } } });
    }
    const back = lastWord((await cli(['tasks', 'submit', 'cli.ack-abandon', '--payload', '{}'])).stdout);
    const a = await cli(['worker', 'start', '--events', 'cli.ack-abandon', '--ack', 'abandon', '--max-tasks', '1', '--wait-seconds', '2']);
    expect(a.code).toBe(0);
    expect((await api(server.url, 'GET', `/tasks/${back}`)).body).toMatchObject({ status: 'PENDING', attempts: 1 });
    // --ack with a program is a contradiction; a bad token ends the loop with exit 3.
    expect((await cli(['worker', 'start', '--events', 'x', '--ack', 'complete', '--', 'cat'])).code).toBe(2);
    expect((await cli(['worker', 'start', '--events', 'x', '--ack', 'complete', '--token', 'bad'])).code).toBe(3);
  });
});

describe('codeq queues and admin', () => {
  it('queues stats, queues list and admin cleanup', async () => {
    await cli(['tasks', 'submit', 'cli.stats', '--payload', '{}']);
    await cli(['tasks', 'submit', 'cli.stats', '--payload', '{}', '--delay', '100']);
    const s = await cli(['queues', 'stats', 'cli.stats']);
    expect(s).toMatchObject({ code: 0, stdout: 'READY: 1 | DELAYED: 1 | IN_PROGRESS: 0 | DLQ: 0\n' });
    expect(JSON.parse((await cli(['queues', 'stats', 'cli.stats', '--json'])).stdout)).toEqual({ command: 'cli.stats', ready: 1, delayed: 1, inProgress: 0, dlq: 0, paused: false });
    const l = await cli(['queues', 'list']);
    expect(l.stdout).toMatch(/^COMMAND\s+READY\s+DELAYED\s+IN_PROGRESS\s+DLQ\s+PAUSED\n/);
    expect(l.stdout).toMatch(/\ncli\.stats\s+1\s+1\s+0\s+0\s+no\n/);
    const c = await cli(['admin', 'cleanup', '--limit', '10']);
    expect(c.stdout).toMatch(/^\[OK\] Deleted \d+ finished tasks? \(before .+\)\n$/);
  });
});

describe('codeq operator commands (tasks list|cancel, queues pause|resume|list, dlq list|redrive)', () => {
  /** Submit a task of `command` with maxAttempts 1, claim it and nack it: dead-lettered with `reason`. */
  async function deadLetter(command: string, reason: string): Promise<string> {
    const id = JSON.parse((await cli(['tasks', 'submit', command, '--payload', '{}', '--max-attempts', '1', '--json'])).stdout).id as string;
    const claimed = JSON.parse((await cli(['tasks', 'claim', '--commands', command, '--json'])).stdout);
    expect(claimed.id).toBe(id);
    await cli(['tasks', 'nack', id, '--reason', reason, '--lease-id', claimed.leaseId]);
    return id;
  }

  it('tasks list shows a table (DELAYED apart), pages with --cursor, follows every page with --all, and --json for scripts', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(lastWord((await cli(['tasks', 'submit', 'cli.list', '--payload', '{}'])).stdout));
    const delayed = lastWord((await cli(['tasks', 'submit', 'cli.list', '--payload', '{}', '--delay', '600'])).stdout);
    const t = await cli(['tasks', 'list', '--command', 'cli.list']);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^ID\s+COMMAND\s+STATUS\s+ATTEMPTS\s+CREATED\s+LAST ERROR\n/);
    expect(t.stdout.trim().split('\n')).toHaveLength(5);
    expect(t.stdout).toMatch(new RegExp(`${delayed}\\s+cli\\.list\\s+DELAYED\\s+0/5`));
    const p1 = await cli(['tasks', 'list', '--command', 'cli.list', '--limit', '2', '--json']);
    const page1 = JSON.parse(p1.stdout) as { tasks: { id: string }[]; nextCursor: string };
    expect(page1.tasks).toHaveLength(2);
    const p2 = JSON.parse((await cli(['tasks', 'list', '--command', 'cli.list', '--limit', '2', '--cursor', page1.nextCursor, '--json'])).stdout) as { tasks: { id: string }[]; nextCursor: string | null };
    expect(p2.tasks).toHaveLength(2);
    expect(p2.nextCursor).toBeNull();
    const human = await cli(['tasks', 'list', '--command', 'cli.list', '--limit', '2']);
    expect(human.stderr).toContain(`More: --cursor ${page1.nextCursor}`);
    const all = JSON.parse((await cli(['tasks', 'list', '--command', 'cli.list', '--limit', '1', '--all', '--json'])).stdout) as { tasks: { id: string }[] };
    expect(all.tasks.map((x) => x.id).sort()).toEqual([...ids, delayed].sort());
    const onlyDelayed = JSON.parse((await cli(['tasks', 'list', '--command', 'cli.list', '--status', 'delayed', '--json'])).stdout) as { tasks: { id: string }[] };
    expect(onlyDelayed.tasks.map((x) => x.id)).toEqual([delayed]);
    const bad = await cli(['tasks', 'list', '--status', 'DONE']);
    expect(bad.code).toBe(2);
  });

  it('tasks cancel cancels a pending task, asks a running one to stop, and exits 5 for a finished one', async () => {
    const id = lastWord((await cli(['tasks', 'submit', 'cli.cancel', '--payload', '{}'])).stdout);
    const r = await cli(['tasks', 'cancel', id]);
    expect(r).toMatchObject({ code: 0, stdout: `[OK] Task cancelled: ${id}\n` });
    expect(JSON.parse((await cli(['tasks', 'cancel', id, '--json'])).stdout).status).toBe('CANCELLED');
    const running = lastWord((await cli(['tasks', 'submit', 'cli.cancel2', '--payload', '{}'])).stdout);
    await cli(['tasks', 'claim', '--commands', 'cli.cancel2']);
    expect((await cli(['tasks', 'cancel', running])).stdout).toMatch(/^\[OK\] Cancel requested: /);
    const done = lastWord((await cli(['tasks', 'submit', 'cli.cancel3', '--payload', '{}'])).stdout);
    await cli(['tasks', 'claim', '--commands', 'cli.cancel3']);
    await cli(['tasks', 'result', done, '--status', 'COMPLETED', '--result', '{}']);
    const fin = await cli(['tasks', 'cancel', done, '--json']);
    expect(fin.code).toBe(5);
    expect(JSON.parse(fin.stdout).error).toMatchObject({ code: 'TASK_FINISHED', httpStatus: 409 });
  });

  it('queues pause stops claims, queues list shows PAUSED, queues resume lets them flow', async () => {
    expect((await cli(['queues', 'pause', 'cli.pause'])).stdout).toBe('[OK] Paused: cli.pause\n');
    await cli(['tasks', 'submit', 'cli.pause', '--payload', '{}']);
    const none = await cli(['tasks', 'claim', '--commands', 'cli.pause', '--json']);
    expect(JSON.parse(none.stdout)).toBeNull();
    expect((await cli(['queues', 'list'])).stdout).toMatch(/\ncli\.pause\s+1\s+0\s+0\s+0\s+yes\n/);
    const j = JSON.parse((await cli(['queues', 'list', '--json'])).stdout) as { commands: { command: string; paused: boolean }[] };
    expect(j.commands.find((x) => x.command === 'cli.pause')).toEqual({ command: 'cli.pause', ready: 1, delayed: 0, inProgress: 0, dlq: 0, paused: true });
    expect(JSON.parse((await cli(['queues', 'resume', 'cli.pause', '--json'])).stdout)).toEqual({ command: 'cli.pause', paused: false });
    expect(JSON.parse((await cli(['tasks', 'claim', '--commands', 'cli.pause', '--json'])).stdout)).toMatchObject({ command: 'cli.pause' });
  });

  it('dlq list shows the last error; dlq redrive --ids / --command moves tasks back once', async () => {
    const a = await deadLetter('cli.dlq', 'bad input a');
    const b = await deadLetter('cli.dlq', 'bad input b');
    const l = await cli(['dlq', 'list', '--command', 'cli.dlq']);
    expect(l.code).toBe(0);
    expect(l.stdout).toMatch(new RegExp(`${a}\\s+cli\\.dlq\\s+FAILED \\(DLQ\\)\\s+1/1\\s+\\S+\\s+bad input a\\n`));
    const lj = JSON.parse((await cli(['dlq', 'list', '--command', 'cli.dlq', '--json'])).stdout) as { tasks: { id: string; lastError: string }[] };
    expect(lj.tasks.map((x) => x.id).sort()).toEqual([a, b].sort());
    const r = await cli(['dlq', 'redrive', '--ids', `${a},missing`]);
    expect(r).toMatchObject({ code: 0, stdout: `[OK] Redriven: 1 task\n${a}\n` });
    expect(JSON.parse((await cli(['dlq', 'redrive', '--ids', a, '--json'])).stdout)).toEqual({ redriven: 0, ids: [] });
    expect(JSON.parse((await cli(['dlq', 'redrive', '--command', 'cli.dlq', '--limit', '5', '--json'])).stdout)).toEqual({ redriven: 1, ids: [b] });
    expect((await cli(['dlq', 'redrive'])).code).toBe(2);
    expect((await cli(['dlq', 'redrive', '--ids', 'x', '--command', 'y'])).code).not.toBe(0);
    expect(JSON.parse((await cli(['queues', 'stats', 'cli.dlq', '--json'])).stdout)).toMatchObject({ ready: 2, dlq: 0 });
  });
});

describe('codeq worker start', () => {
  it('-- cat: each payload goes through the command; stdout becomes the result', async () => {
    const a = lastWord((await cli(['tasks', 'submit', 'cli.cat', '--payload', '{"hello":"world"}'])).stdout);
    const b = lastWord((await cli(['tasks', 'submit', 'cli.cat', '--payload', '"text"'])).stdout);
    const r = await cli(['worker', 'start', '--commands', 'cli.cat', '--max-tasks', '2', '--', 'cat']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`[INFO] Task claimed: ${a} (cli.cat, attempt 1)`);
    expect(r.stdout).toMatch(new RegExp(`\\[OK\\] Task completed: ${b} \\(cli\\.cat\\) in \\d+ ms`));
    expect(r.stderr).toContain('[INFO] Worker started: commands cli.cat, concurrency 1');
    expect(r.stderr).toContain('[INFO] Worker stopped: 2 completed, 0 failed, 0 nacked');
    expect((await api(server.url, 'GET', `/tasks/${a}/result`)).body.result.result).toEqual({ hello: 'world' });
    expect((await api(server.url, 'GET', `/tasks/${b}/result`)).body.result.result).toEqual({ stdout: '"text"' });
  });

  it('non-zero exit nacks, or fails with --fail-on-error; --json prints JSON lines', async () => {
    const a = lastWord((await cli(['tasks', 'submit', 'cli.exit', '--payload', '{}'])).stdout);
    const r = await cli(['worker', 'start', '--commands', 'cli.exit', '--max-tasks', '1', '--json', '--', 'sh', '-c', 'echo broken >&2; exit 3']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.type ?? 'summary')).toEqual(['claimed', 'nacked', 'summary']);
    expect(lines[1]).toMatchObject({ taskId: a, reason: 'command exited with code 3: broken', status: 'requeued' });
    expect(lines[2]).toEqual({ claimed: 1, completed: 0, failed: 0, nacked: 1, abandoned: 0, leaseLost: 0 });

    const f = await cli(['worker', 'start', '--commands', 'cli.exit', '--max-tasks', '1', '--fail-on-error', '--wait', '5', '--', 'sh -c "exit 4"']);
    expect(f.stdout).toContain(`[ERROR] Task failed: ${a} (cli.exit): command exited with code 4`);
    expect((await api(server.url, 'GET', `/tasks/${a}/result`)).body.result).toMatchObject({ status: 'FAILED', error: 'command exited with code 4' });
  });

  it('task details are in the environment', async () => {
    const a = lastWord((await cli(['tasks', 'submit', 'cli.env', '--payload', '{}'])).stdout);
    await cli(['worker', 'start', '--commands', 'cli.env', '--max-tasks', '1', '--', 'sh -c \'printf "{\\"id\\":\\"%s\\",\\"cmd\\":\\"%s\\"}" "$CODEQ_TASK_ID" "$CODEQ_TASK_COMMAND"\'']);
    expect((await api(server.url, 'GET', `/tasks/${a}/result`)).body.result.result).toEqual({ id: a, cmd: 'cli.env' });
  });

  it('refuses an unknown program (2) and a bad token (3)', async () => {
    const r = await cli(['worker', 'start', '--commands', 'x', '--', 'no-such-program-here']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('command not found: no-such-program-here');
    const t = await cli(['worker', 'start', '--commands', 'x', '--token', 'bad', '--', 'cat']);
    expect(t.code).toBe(3);
    expect(t.stderr).toContain('invalid token');
  });
});

describe('codeq config', () => {
  it('profiles, precedence flag > env > profile > default, file mode 0600', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-cli-profile-'));
    const e = { CODEQ_CONFIG_DIR: dir, CODEQ_URL: undefined, CODEQ_TOKEN: undefined };
    try {
      const empty = JSON.parse((await cli(['config', 'show', '--json'], { env: e })).stdout);
      expect(empty).toMatchObject({ profile: 'default', url: 'http://localhost:8080', urlSource: 'default', token: '<unset>' });

      expect((await cli(['config', 'set', 'url', server.url + '/'], { env: e })).stdout).toBe(`[OK] Set url = ${server.url} in profile 'default' (${join(dir, 'config.json')})\n`);
      expect((await cli(['config', 'set', 'token', 'a-long-secret-token'], { env: e })).stdout).toContain('Set token = a-lo...oken');
      expect((await stat(join(dir, 'config.json'))).mode & 0o777).toBe(0o600);

      const show = await cli(['config', 'show'], { env: e });
      expect(show.stdout).toContain(`• url: ${server.url} (profile)`);
      expect(show.stdout).toContain('• token: a-lo...oken (profile)');

      // The profile's token is wrong; env beats it, and a flag beats env.
      expect((await cli(['queues', 'stats', 'x'], { env: e })).code).toBe(3);
      expect((await cli(['queues', 'stats', 'x'], { env: { ...e, CODEQ_TOKEN: TOKEN } })).code).toBe(0);
      expect((await cli(['queues', 'stats', 'x', '--token', 'wrong-again'], { env: { ...e, CODEQ_TOKEN: TOKEN } })).code).toBe(3);
      expect((await cli(['queues', 'stats', 'x', '--url', 'http://127.0.0.1:9'], { env: { ...e, CODEQ_TOKEN: TOKEN } })).code).toBe(7);

      expect((await cli(['config', 'use', 'ci'], { env: e })).stdout).toBe("[OK] Using profile 'ci' (new)\n");
      await cli(['config', 'set', 'output', 'json'], { env: e });
      await cli(['config', 'set', 'url', server.url], { env: e });
      await cli(['config', 'set', 'token', TOKEN], { env: e });
      const j = await cli(['queues', 'stats', 'x'], { env: e });
      expect(JSON.parse(j.stdout)).toMatchObject({ command: 'x', ready: 0 }); // output: json from the profile
      expect((await cli(['config', 'show', '--profile', 'default', '--json'], { env: e })).stdout).toContain('"profile": "default"');
      const file = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
      expect(file).toMatchObject({ currentProfile: 'ci', profiles: { default: { url: server.url }, ci: { output: 'json' } } });
      expect((await cli(['config', 'set', 'url', 'not-a-url'], { env: e })).code).toBe(2);

      // transport and stream addresses: default from the URL's host, then the profile.
      const before = JSON.parse((await cli(['config', 'show', '--json'], { env: e })).stdout);
      expect(before).toMatchObject({ transport: 'http', transportSource: 'default', workerAddress: '127.0.0.1:9091', producerAddress: '127.0.0.1:9092' });
      expect((await cli(['config', 'set', 'transport', 'grpc'], { env: e })).code).toBe(0);
      expect((await cli(['config', 'set', 'transport', 'udp'], { env: e })).code).toBe(2);
      // (this profile prints JSON)
      expect(JSON.parse((await cli(['config', 'set', 'producerAddress', `grpc://${server.producerAddress}`], { env: e })).stdout)).toMatchObject({ key: 'producerAddress', value: server.producerAddress });
      expect((await cli(['config', 'set', 'workerAddress', 'no-port'], { env: e })).code).toBe(2);
      const g = await cli(['tasks', 'submit', 'cli.profile.grpc', '--payload', '{}'], { env: e });
      expect(JSON.parse(g.stdout)).toMatchObject({ command: 'cli.profile.grpc', status: 'PENDING' });
      expect(JSON.parse((await cli(['config', 'show'], { env: e })).stdout)).toMatchObject({ transport: 'grpc', transportSource: 'profile', producerAddress: server.producerAddress, producerAddressSource: 'profile' });
      expect((await cli(['config', 'show', '--profile', 'default'], { env: e })).stdout).toContain('• transport: http (default; used by tasks submit and worker start)');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
