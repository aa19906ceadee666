/**
 * `codeq schedules add|list|rm` against a real server process (issue 17 item 4): human output,
 * --json for scripts, exit codes (2 bad input, 4 unknown name), and a one-second schedule whose
 * tasks the CLI then lists.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './support/cli.js';
import { startServer, TOKEN, type TestServer } from '@codeq/testkit';

let server: TestServer;
let configDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  server = await startServer();
  configDir = await mkdtemp(join(tmpdir(), 'codeq-cli-config-'));
  env = { CODEQ_URL: server.url, CODEQ_TOKEN: TOKEN, CODEQ_CONFIG_DIR: configDir };
}, 60_000);
afterAll(async () => {
  await server?.dispose();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

const cli = (args: string[]) => runCli(args, { env });

describe('codeq schedules', () => {
  it('add prints the next run (or the schedule with --json), list shows a table, rm deletes (exit 4 when unknown)', async () => {
    const a = await cli(['schedules', 'add', 'nightly', '--command', 'report.build', '--cron', '0 2 * * *', '--timezone', 'Europe/Paris', '--overlap', 'skip', '--payload', '{"full":true}']);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^\[OK\] Schedule saved: nightly\nNext run: \d{4}-\d\d-\d\dT\d\d:00:00Z\n$/);
    const j = JSON.parse((await cli(['schedules', 'add', 'beat', '--command', 'ping', '--every', '30', '--missed', 'skip', '--jitter', '5', '--json'])).stdout);
    expect(j).toMatchObject({ name: 'beat', command: 'ping', everySeconds: 30, cron: null, missed: 'skip', jitterSeconds: 5, payload: {}, timezone: 'UTC' });

    const l = await cli(['schedules', 'list']);
    expect(l.code).toBe(0);
    expect(l.stdout).toMatch(/^NAME\s+COMMAND\s+WHEN\s+NEXT RUN\s+LAST RUN\s+LAST TASK\n/);
    expect(l.stdout).toMatch(/\nbeat\s+ping\s+every 30 s\s+\S+Z\s+-\s+-\n/);
    expect(l.stdout).toMatch(/\nnightly\s+report\.build\s+0 2 \* \* \* \(Europe\/Paris\)\s+\S+Z\s+-\s+-\n/);
    const lj = JSON.parse((await cli(['schedules', 'list', '--json'])).stdout) as { schedules: { name: string; payload: unknown }[] };
    expect(lj.schedules.map((s) => s.name)).toEqual(['beat', 'nightly']);
    expect(lj.schedules[1]!.payload).toEqual({ full: true });

    const r = await cli(['schedules', 'rm', 'nightly']);
    expect(r).toMatchObject({ code: 0, stdout: '[OK] Schedule deleted: nightly\n' });
    expect((await cli(['schedules', 'rm', 'nightly'])).code).toBe(4);
    expect(JSON.parse((await cli(['schedules', 'list', '--json'])).stdout).schedules.map((s: { name: string }) => s.name)).toEqual(['beat']);
    await cli(['schedules', 'rm', 'beat']);
  }, 120_000);

  it('bad input exits 2 with the server’s message; nothing is stored', async () => {
    const bad = await cli(['schedules', 'add', 'x', '--command', 'c', '--cron', '99 * * * *']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid 'cron'/);
    const zone = await cli(['schedules', 'add', 'x', '--command', 'c', '--every', '10', '--timezone', 'Atlantis/Capital']);
    expect(zone.code).toBe(2);
    expect(zone.stderr).toMatch(/unknown IANA time zone/);
    expect((await cli(['schedules', 'add', 'x', '--command', 'c'])).code).toBe(2);
    expect((await cli(['schedules', 'add', 'x', '--command', 'c', '--every', '10', '--payload', '{nope'])).code).toBe(2);
    expect(JSON.parse((await cli(['schedules', 'list', '--json'])).stdout).schedules).toEqual([]);
  }, 120_000);

  it('a one-second schedule creates tasks that tasks list shows', async () => {
    expect((await cli(['schedules', 'add', 'fast', '--command', 'cli.sched', '--every', '1'])).code).toBe(0);
    const deadline = Date.now() + 30_000;
    let n = 0;
    while (Date.now() < deadline && n < 2) {
      n = (JSON.parse((await cli(['tasks', 'list', '--command', 'cli.sched', '--json'])).stdout) as { tasks: unknown[] }).tasks.length;
    }
    expect(n).toBeGreaterThanOrEqual(2);
    const last = JSON.parse((await cli(['schedules', 'list', '--json'])).stdout).schedules[0];
    expect(last).toMatchObject({ name: 'fast', lastTaskId: expect.any(String), lastRunAt: expect.any(String) });
    await cli(['schedules', 'rm', 'fast']);
  }, 120_000);
});
