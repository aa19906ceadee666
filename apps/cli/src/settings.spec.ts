import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configPath, mask, readConfig, resolveSettings, writeConfig } from './settings.js';

describe(resolveSettings.name, () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'codeq-settings-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('defaults without a file', () => {
    expect(resolveSettings({}, { CODEQ_CONFIG_DIR: dir })).toMatchObject({ profile: 'default', url: 'http://localhost:8080', urlSource: 'default', token: undefined, output: 'table' });
  });

  it('flags > env > profile > default', () => {
    const env = { CODEQ_CONFIG_DIR: dir };
    writeConfig(configPath(env), { currentProfile: 'p', profiles: { p: { url: 'http://profile:1/', token: 'pt', output: 'json' }, q: { url: 'http://q:2' } } });
    expect(resolveSettings({}, env)).toMatchObject({ profile: 'p', url: 'http://profile:1', urlSource: 'profile', token: 'pt', tokenSource: 'profile', output: 'json' });
    expect(resolveSettings({}, { ...env, CODEQ_URL: 'http://env:3', CODEQ_TOKEN: 'et' })).toMatchObject({ url: 'http://env:3', urlSource: 'env', token: 'et', tokenSource: 'env' });
    expect(resolveSettings({ url: 'http://flag:4', token: 'ft' }, { ...env, CODEQ_URL: 'http://env:3', CODEQ_TOKEN: 'et' })).toMatchObject({ url: 'http://flag:4', urlSource: 'flag', token: 'ft', tokenSource: 'flag' });
    expect(resolveSettings({ profile: 'q' }, env)).toMatchObject({ profile: 'q', url: 'http://q:2', token: undefined });
    expect(resolveSettings({}, { ...env, CODEQ_PROFILE: 'q' })).toMatchObject({ profile: 'q' });
    expect(resolveSettings({}, { ...env, CODEQ_BASE_URL: 'http://upstream-name:5' })).toMatchObject({ url: 'http://upstream-name:5', urlSource: 'env' });
  });

  it("reads upstream's CODEQ_PRODUCER_TOKEN / CODEQ_WORKER_TOKEN by command role when CODEQ_TOKEN is unset", () => {
    const env = { CODEQ_CONFIG_DIR: dir, CODEQ_PRODUCER_TOKEN: 'pt', CODEQ_WORKER_TOKEN: 'wt' };
    expect(resolveSettings({}, env)).toMatchObject({ token: 'pt', tokenSource: 'env' });
    expect(resolveSettings({}, env, 'worker')).toMatchObject({ token: 'wt', tokenSource: 'env' });
    // Each falls back to the other, as upstream's CLI does.
    expect(resolveSettings({}, { CODEQ_CONFIG_DIR: dir, CODEQ_WORKER_TOKEN: 'wt' })).toMatchObject({ token: 'wt' });
    expect(resolveSettings({}, { CODEQ_CONFIG_DIR: dir, CODEQ_PRODUCER_TOKEN: 'pt' }, 'worker')).toMatchObject({ token: 'pt' });
    // CODEQ_TOKEN and the flag come first.
    expect(resolveSettings({}, { ...env, CODEQ_TOKEN: 'ct' }, 'worker')).toMatchObject({ token: 'ct' });
    expect(resolveSettings({ token: 'ft' }, env, 'worker')).toMatchObject({ token: 'ft', tokenSource: 'flag' });
  });

  it('uses ~/.config/codeq unless CODEQ_CONFIG_DIR or XDG_CONFIG_HOME is set', () => {
    expect(configPath({ CODEQ_CONFIG_DIR: '/x' })).toBe('/x/config.json');
    expect(configPath({ XDG_CONFIG_HOME: '/xdg' })).toBe('/xdg/codeq/config.json');
    expect(configPath({})).toMatch(/\.config\/codeq\/config\.json$/);
  });

  it('reads a missing file as empty and rejects a broken one', () => {
    expect(readConfig(join(dir, 'none.json'))).toEqual({ profiles: {} });
  });

  it('masks secrets', () => {
    expect(mask(undefined)).toBe('<unset>');
    expect(mask('short')).toBe('****');
    expect(mask('abcdefghijkl')).toBe('abcd...ijkl');
  });
});
