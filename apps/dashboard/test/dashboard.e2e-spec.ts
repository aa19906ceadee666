/**
 * The dashboard end to end: the real server (apps/server/dist, SQLite in a temp dir) serving the
 * built dashboard (apps/dashboard/dist) at /ui, driven by headless Chromium (Debian's package,
 * through playwright-core). Tasks are created and worked through the HTTP API, as a producer and a
 * worker would; the UI must show them and act on them. Screenshots go to test-output/.
 * Build first: bash scripts/pnpm.sh exec turbo run build --filter=@codeq/server...
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startServer, waitFor, WORKER_SCOPES, type TestServer } from '@codeq/testkit';

const here = dirname(fileURLToPath(import.meta.url));
const DIST = resolve(here, '../dist');
const OUT = resolve(here, '../test-output');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

const ADMIN = 'admin-token';
const USER = 'user-token';
const WORKER = 'worker-token';
const TENANT = 'acme';

const auth = {
  PRODUCER_AUTH_PROVIDER: 'multi',
  PRODUCER_AUTH_CONFIG: JSON.stringify({
    providers: [
      { type: 'static', config: { token: ADMIN, subject: 'ops-admin', raw: { role: 'ADMIN', tid: TENANT } } },
      { type: 'static', config: { token: USER, subject: 'app-user', raw: { tid: TENANT } } },
    ],
  }),
  WORKER_AUTH_PROVIDER: 'static',
  WORKER_AUTH_CONFIG: JSON.stringify({ token: WORKER, subject: 'worker-1', scopes: WORKER_SCOPES, eventTypes: ['*'], raw: { tid: TENANT } }),
};

let server: TestServer;
let browser: Browser;
let profile: string;

async function api(method: string, path: string, body?: unknown, token = ADMIN): Promise<{ status: number; body: any }> {
  const r = await fetch(`${server.url}/v1/codeq${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

async function createTask(command: string, payload: unknown, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await api('POST', '/tasks', { command, payload, ...extra });
  expect(r.status).toBe(202);
  return r.body.id as string;
}

async function claim(command: string): Promise<{ id: string; leaseId?: string }> {
  const r = await api('POST', '/tasks/claim', { commands: [command], leaseSeconds: 60 }, WORKER);
  expect(r.status).toBe(200);
  return r.body;
}

/** Console errors and uncaught exceptions of every page (a CSP violation or a crash shows up here). */
const pageErrors: string[] = [];

async function signIn(token: string, viewport = { width: 1280, height: 860 }, colorScheme: 'light' | 'dark' = 'light'): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ viewport, colorScheme, acceptDownloads: true });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    // Failed API calls the UI shows on purpose (401 at sign-in, 404 of a missing result) are logged by Chromium too.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/ui/`);
  await page.getByLabel('Bearer token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('tenant').waitFor();
  return { ctx, page };
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });

beforeAll(async () => {
  if (!existsSync(join(DIST, 'index.html'))) throw new Error(`${DIST} has no build: run the dashboard build first`);
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  await mkdir(OUT, { recursive: true });
  server = await startServer({ env: { ...auth, CODEQ_DASHBOARD_DIR: DIST, MAX_ATTEMPTS_DEFAULT: '3' } });
  profile = await mkdtemp(join(tmpdir(), 'codeq-chromium-'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--disk-cache-dir=${join(profile, 'cache')}`],
  });
});

afterEach(() => {
  const errors = pageErrors.splice(0);
  expect(errors).toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await server?.dispose();
  if (profile) await rm(profile, { recursive: true, force: true });
});

describe('codeQ dashboard in Chromium', () => {
  it('signs in with a bearer token, shows the tenant, and refuses a bad token', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    await page.goto(`${server.url}/ui`);
    await shot(page, '00-sign-in');
    await page.getByLabel('Bearer token').fill('wrong-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expectText(page.getByRole('alert'), /invalid token/i);
    await page.getByLabel('Bearer token').fill(WORKER);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expectText(page.getByRole('alert'), /worker token/);
    await page.getByLabel('Bearer token').fill(ADMIN);
    await page.keyboard.press('Enter'); // the form submits from the keyboard
    await page.getByTestId('tenant').waitFor();
    expect(await page.getByTestId('tenant').textContent()).toBe(TENANT);
    expect(await page.evaluate(() => sessionStorage.getItem('codeq.token'))).toBe(ADMIN);
    // A reload keeps the session (session storage); signing out forgets the token.
    await page.reload();
    await page.getByTestId('tenant').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Bearer token').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('codeq.token'))).toBeNull();
    await ctx.close();
  });

  it('shows a task created through the API in the list and opens its detail with the payload and result', async () => {
    const id = await createTask('RENDER_VIDEO', { film: 'The General', frames: [1, 2, 3] }, { priority: 5, webhook: 'http://127.0.0.1:9/hook' });
    const { ctx, page } = await signIn(ADMIN);
    await page.getByRole('link', { name: 'Tasks' }).click();
    const row = page.locator(`tr[data-task-id="${id}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('RENDER_VIDEO');
    // Live refresh: a task created now shows up without reloading.
    const later = await createTask('RENDER_VIDEO', { film: 'Sherlock Jr.' });
    await page.locator(`tr[data-task-id="${later}"]`).waitFor({ timeout: 15_000 });
    // Filters: another command's task is hidden.
    await createTask('SEND_EMAIL', { to: 'a@example.com' });
    await page.getByLabel('Command').fill('RENDER_VIDEO');
    await page.getByRole('button', { name: 'Apply' }).click();
    await waitFor(async () => (await page.locator('tbody tr').count()) === 2, 15_000, 'filtered list');
    expect(page.url()).toContain('command=RENDER_VIDEO');
    await shot(page, '02-tasks');

    // A worker claims one: the detail page shows the lease holder and expiry, then (live) the result.
    const c = await claim('RENDER_VIDEO');
    const done = c.id;
    expect([id, later]).toContain(done);
    await page.locator(`tr[data-task-id="${done}"] a`).click();
    await page.getByRole('heading', { level: 1, name: /RENDER_VIDEO/ }).waitFor();
    await expectText(page.getByTestId('task-status'), /IN PROGRESS/);
    expect(await page.getByTestId('lease-holder').textContent()).toBe('worker-1');
    expect(await page.getByTestId('lease-until').textContent()).toMatch(/\(in \d+(s|m)\)/);
    expect(await page.getByLabel('Payload').textContent()).toContain('"film": ');
    // The worker reports progress and writes log lines: the detail page shows both (live).
    expect(await page.getByTestId('task-progress').textContent()).toBe('—');
    expect((await api('POST', `/tasks/${done}/progress`, { progress: 40, leaseId: c.leaseId }, WORKER)).status).toBe(200);
    expect((await api('POST', `/tasks/${done}/logs`, { lines: ['decoded 3 frames', { level: 'warn', message: 'frame 2 re-encoded' }], leaseId: c.leaseId }, WORKER)).status).toBe(200);
    await expectText(page.getByTestId('task-progress'), /^40%$/);
    await expectText(page.getByTestId('task-log'), /WARN\s+frame 2 re-encoded/);
    expect(await page.getByTestId('task-log').textContent()).toContain('decoded 3 frames');
    const res = await api('POST', `/tasks/${done}/result`, { status: 'COMPLETED', result: { frames: 3, url: 's3://bucket/out.mp4' }, artifacts: [{ name: 'log.txt', contentBase64: Buffer.from('rendered 3 frames\n').toString('base64'), contentType: 'text/plain' }] }, WORKER);
    expect(res.status).toBe(200);
    await expectText(page.getByTestId('task-status'), /COMPLETED/);
    await page.getByLabel('Result').waitFor();
    expect(await page.getByLabel('Result').textContent()).toContain('"frames": 3');
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download log.txt' }).click();
    const file = await (await download).path();
    expect(await readFile(file, 'utf8')).toBe('rendered 3 frames\n');
    await shot(page, '03-task-detail');
    await ctx.close();
  });

  it('pages through tasks with keyset cursors and filters by status and time range', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 55; i++) ids.push(await createTask('PAGED', { i }));
    const finished = await claim('PAGED');
    await api('POST', `/tasks/${finished.id}/result`, { status: 'FAILED', error: 'disk full' }, WORKER);
    const { ctx, page } = await signIn(ADMIN);
    await page.goto(`${server.url}/ui/tasks?command=PAGED`);
    await waitFor(async () => (await page.locator('tbody tr[data-task-id]').count()) === 50, 15_000, 'first page of 50');
    // Newest first: the last created is on page 1, the first created on page 2.
    await page.locator(`tr[data-task-id="${ids[54]}"]`).waitFor();
    await page.getByRole('button', { name: 'Older →' }).click();
    await waitFor(async () => (await page.locator('tbody tr[data-task-id]').count()) === 5, 15_000, 'second page of 5');
    await page.locator(`tr[data-task-id="${ids[0]}"]`).waitFor();
    expect(await page.getByRole('button', { name: 'Older →' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: '← Newer' }).click();
    await page.locator(`tr[data-task-id="${ids[54]}"]`).waitFor();
    // Status filter.
    await page.getByLabel('Status').selectOption('FAILED');
    await page.getByRole('button', { name: 'Apply' }).click();
    await waitFor(async () => (await page.locator('tbody tr[data-task-id]').count()) === 1, 15_000, 'one failed task');
    expect(await page.locator(`tr[data-task-id="${finished.id}"]`).textContent()).toContain('disk full');
    // A time range in the future matches nothing.
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Created after').fill('2099-01-01T00:00');
    await page.getByRole('button', { name: 'Apply' }).click();
    await expectText(page.locator('tbody'), /No tasks match/);
    await ctx.close();
  });

  it('cancels a queued task, and a running one (cancel requested, then CANCELLED), from the detail page', async () => {
    const id = await createTask('CANCEL_ME', { n: 1 });
    const { ctx, page } = await signIn(ADMIN);
    await page.goto(`${server.url}/ui/tasks/${id}`); // a deep link (the server answers index.html)
    await page.getByRole('button', { name: 'Cancel task' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel task' }).click();
    await expectText(page.getByTestId('task-status'), /CANCELLED/);
    expect((await api('GET', `/tasks/${id}`)).body.status).toBe('CANCELLED');
    expect(await page.getByRole('button', { name: 'Cancel task' }).count()).toBe(0);
    // A running task: the cancel is requested; the worker's next heartbeat is refused and it ends CANCELLED.
    const running = await createTask('CANCEL_ME', { n: 2 });
    expect((await claim('CANCEL_ME')).id).toBe(running);
    await page.goto(`${server.url}/ui/tasks/${running}`);
    await expectText(page.getByTestId('task-status'), /IN PROGRESS/);
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel task' }).click();
    await expectText(page.getByTestId('task-status'), /cancel requested/);
    expect((await api('POST', `/tasks/${running}/heartbeat`, { extendSeconds: 30 }, WORKER)).status).toBe(409);
    await expectText(page.getByTestId('task-status'), /CANCELLED/);
    await ctx.close();
  });

  it('pauses and resumes a command from the Queues page, with a confirmation', async () => {
    await createTask('PAUSE_ME', { n: 1 });
    const { ctx, page } = await signIn(ADMIN);
    await page.getByRole('link', { name: 'Queues' }).click();
    const row = page.locator('tr[data-command="PAUSE_ME"]');
    await row.waitFor();
    await row.getByRole('button', { name: 'Pause PAUSE_ME' }).click();
    // Escape closes the dialog without acting.
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
    expect(await commandPaused('PAUSE_ME')).toBe(false);
    await row.getByRole('button', { name: 'Pause PAUSE_ME' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Pause' }).click();
    await expectText(row, /paused/);
    expect(await commandPaused('PAUSE_ME')).toBe(true);
    // Paused: a worker claims nothing of it.
    const none = await api('POST', '/tasks/claim', { commands: ['PAUSE_ME'], leaseSeconds: 30 }, WORKER);
    expect(none.status).toBe(204);
    await shot(page, '05-queues');
    await row.getByRole('button', { name: 'Resume PAUSE_ME' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Resume' }).click();
    await expectText(row, /running/);
    expect(await commandPaused('PAUSE_ME')).toBe(false);
    expect((await claim('PAUSE_ME')).id).toBeTruthy();
    await ctx.close();
  });

  it('redrives a dead-lettered task and shows it complete', async () => {
    const id = await createTask('FLAKY', { try: 1 }, { maxAttempts: 1 });
    const c = await claim('FLAKY');
    expect(c.id).toBe(id);
    const nack = await api('POST', `/tasks/${id}/nack`, { reason: 'upstream timed out' }, WORKER);
    expect(nack.status).toBe(200);
    const other = await createTask('FLAKY', { try: 2 }, { maxAttempts: 1 });
    await claim('FLAKY');
    await api('POST', `/tasks/${other}/nack`, { reason: 'bad input' }, WORKER);

    const { ctx, page } = await signIn(ADMIN);
    await page.getByRole('link', { name: 'Dead letters' }).click();
    const row = page.locator(`tr[data-task-id="${id}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('upstream timed out');
    await page.locator(`tr[data-task-id="${other}"]`).waitFor();
    await shot(page, '04-dead-letters');
    await row.getByRole('checkbox').check();
    await page.getByRole('button', { name: 'Redrive selected (1)' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Redrive' }).click();
    await expectText(page.getByRole('status'), /Redriven: 1/);
    await row.waitFor({ state: 'detached' });
    // The other one is still dead-lettered; the worker now gets the redriven one and completes it.
    await page.locator(`tr[data-task-id="${other}"]`).waitFor();
    const again = await claim('FLAKY');
    expect(again.id).toBe(id);
    expect((await api('POST', `/tasks/${id}/result`, { status: 'COMPLETED', result: { ok: true } }, WORKER)).status).toBe(200);
    await page.goto(`${server.url}/ui/tasks/${id}`);
    await expectText(page.getByTestId('task-status'), /COMPLETED/);
    // An admin sees Redrive on a dead letter's page.
    await page.goto(`${server.url}/ui/tasks/${other}`);
    await expectText(page.getByTestId('task-status'), /dead letter/);
    expect(await page.getByRole('button', { name: 'Redrive' }).count()).toBe(1);
    // "Redrive all" of the command takes the rest.
    await page.goto(`${server.url}/ui/dead-letters`);
    await page.getByRole('button', { name: /Redrive all 1 dead letters of FLAKY/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Redrive' }).click();
    await expectText(page.getByRole('status'), /Redriven: 1 task\(s\) of FLAKY/);
    expect((await api('GET', `/tasks/${other}`)).body.status).toBe('PENDING');
    await ctx.close();
  });

  it('shows queue depths and throughput on the overview, at 1280 px, on a phone and in dark mode', async () => {
    for (let i = 0; i < 5; i++) await createTask('REPORT', { i });
    const { ctx, page } = await signIn(ADMIN);
    const row = page.locator('tr[data-command="REPORT"]');
    await row.waitFor();
    expect(await row.locator('td').first().textContent()).toBe('5'); // ready
    await waitFor(async () => Number(await page.getByTestId('total-created').textContent()) >= 5, 15_000, 'created total');
    expect(await page.getByRole('img', { name: /Last 15 minutes: \d+ created/ }).count()).toBe(1);
    await shot(page, '01-overview');
    await page.getByLabel('Window').selectOption('60');
    await page.getByRole('img', { name: /Last 60 minutes: \d+ created/ }).waitFor();
    await ctx.close();

    const phone = await signIn(ADMIN, { width: 390, height: 844 }, 'dark');
    await phone.page.locator('tr[data-command="REPORT"]').waitFor();
    // Nothing overflows the viewport horizontally except inside scrollable tables.
    const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const bg = await phone.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(15, 17, 21)');
    await shot(phone.page, '06-overview-phone-dark');
    await phone.page.getByRole('link', { name: 'Tasks' }).click();
    await phone.page.locator('tbody tr').first().waitFor();
    await shot(phone.page, '07-tasks-phone-dark');
    expect(await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
    await phone.ctx.close();
  });

  it('hides admin pages and actions from a non-admin token, and the API refuses them anyway', async () => {
    const dead = await createTask('USER_DLQ', {}, { maxAttempts: 1 });
    await claim('USER_DLQ');
    await api('POST', `/tasks/${dead}/nack`, { reason: 'nope' }, WORKER);
    const { ctx, page } = await signIn(USER);
    expect(await page.getByTestId('who').textContent()).toContain('app-user');
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link').allTextContents()).toEqual(['Overview', 'Tasks']);
    expect(await page.locator('main').textContent()).toContain('need an admin token');
    await page.goto(`${server.url}/ui/tasks/${dead}`);
    await page.getByRole('heading', { level: 1, name: /USER_DLQ/ }).waitFor();
    await expectText(page.getByTestId('task-status'), /dead letter/);
    expect(await page.getByRole('button', { name: 'Redrive' }).count()).toBe(0);
    await page.goto(`${server.url}/ui/queues`);
    await page.getByRole('heading', { name: 'Not allowed' }).waitFor();
    expect(await page.getByRole('button', { name: /Pause/ }).count()).toBe(0);
    await shot(page, '08-non-admin');
    await ctx.close();
    expect((await api('POST', '/admin/queues/USER_DLQ/pause', {}, USER)).status).toBe(403);
    expect((await api('POST', '/admin/dlq/redrive', { ids: [dead] }, USER)).status).toBe(403);
    expect((await api('GET', '/admin/commands', undefined, USER)).status).toBe(403);
  });

  it('is keyboard navigable: skip link, labelled controls, focus moves through the nav', async () => {
    const { ctx, page } = await signIn(ADMIN);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Tab'); // brand
    await page.keyboard.press('Tab'); // Overview
    await page.keyboard.press('Tab'); // Tasks
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Tasks');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Tasks', level: 1 }).waitFor();
    // Every form control on the page has an accessible name.
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, button')].filter((el) => {
        const e = el as HTMLInputElement;
        return !(e.labels?.length || e.getAttribute('aria-label') || e.textContent?.trim());
      }).length,
    );
    expect(unlabelled).toBe(0);
    // The theme button cycles system → light → dark, and the choice survives a reload.
    await page.getByRole('button', { name: /^Theme: system/ }).click();
    await page.getByRole('button', { name: /^Theme: light/ }).click();
    await page.getByRole('button', { name: /^Theme: dark/ }).waitFor();
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(15, 17, 21)');
    await page.reload();
    await page.getByRole('button', { name: /^Theme: dark/ }).waitFor();
    expect(await page.evaluate(() => document.documentElement.dataset['theme'])).toBe('dark');
    await ctx.close();
  });
});

async function commandPaused(command: string): Promise<boolean> {
  const r = await api('GET', '/admin/commands');
  expect(r.status).toBe(200);
  const row = (r.body.commands as { command: string; paused: boolean }[]).find((c) => c.command === command);
  return row?.paused ?? false;
}

async function expectText(loc: ReturnType<Page['locator']>, re: RegExp, ms = 15_000): Promise<void> {
  await waitFor(async () => re.test((await loc.first().textContent().catch(() => '')) ?? ''), ms, `text ${re}`);
}
