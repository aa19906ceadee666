import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config.js';

/** The persistence provider and its config (issue 7: SQLite or PostgreSQL), from env and YAML. */
describe('loadConfig persistence', () => {
  const pgEnv = (config: unknown, provider = 'postgres') => ({ PERSISTENCE_PROVIDER: provider, PERSISTENCE_CONFIG: JSON.stringify(config) });
  const problem = (env: Record<string, string>): string => {
    try {
      loadConfig({ env });
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('accepted');
  };

  it('selects PostgreSQL with a URL and a pool size (postgres, postgresql, any case)', () => {
    expect(loadConfig({ env: pgEnv({ url: 'postgres://codeq:pw@db:5432/codeq', poolSize: 4 }) }).persistence).toEqual({ provider: 'postgres', url: 'postgres://codeq:pw@db:5432/codeq', poolSize: 4 });
    expect(loadConfig({ env: pgEnv({ url: 'postgresql://db/codeq' }, 'PostgreSQL') }).persistence).toEqual({ provider: 'postgres', url: 'postgresql://db/codeq', poolSize: 10 });
  });

  it('refuses a missing or foreign URL and a bad pool size, naming the key', () => {
    expect(problem(pgEnv({ poolSize: 4 }))).toMatch(/PERSISTENCE_CONFIG.*"url" is required/);
    // Neither env nor YAML set it: the message names the YAML key.
    expect(problem({ PERSISTENCE_PROVIDER: 'postgres' })).toMatch(/persistenceConfig.*"url" is required/);
    expect(problem(pgEnv({ url: 'mysql://db/codeq' }))).toMatch(/PERSISTENCE_CONFIG.*postgres:\/\/ or postgresql:\/\//);
    for (const poolSize of [0, -1, 2.5, '10']) expect(problem(pgEnv({ url: 'postgres://db/codeq', poolSize }))).toMatch(/PERSISTENCE_CONFIG.*"poolSize"/);
    expect(problem({ PERSISTENCE_PROVIDER: 'mongo' })).toMatch(/PERSISTENCE_PROVIDER.*unsupported/);
  });

  it('reads the same from YAML (persistenceProvider, persistenceConfig), env winning', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-config-'));
    try {
      const file = join(dir, 'codeq.yaml');
      await writeFile(file, ['persistenceProvider: postgres', 'persistenceConfig:', '  url: postgres://yaml@db/codeq', '  poolSize: 3'].join('\n'));
      expect(loadConfig({ env: { CODEQ_CONFIG_PATH: file } }).persistence).toEqual({ provider: 'postgres', url: 'postgres://yaml@db/codeq', poolSize: 3 });
      expect(loadConfig({ env: { CODEQ_CONFIG_PATH: file, PERSISTENCE_PROVIDER: 'sqlite', PERSISTENCE_CONFIG: '{"path":"/tmp/x"}' } }).persistence).toEqual({ provider: 'sqlite', path: '/tmp/x', fsyncOnCommit: false });
      await writeFile(file, ['persistenceProvider: postgres', 'persistenceConfig:', '  poolSize: 3'].join('\n'));
      expect(() => loadConfig({ env: { CODEQ_CONFIG_PATH: file } })).toThrow(/persistenceConfig.*"url" is required/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Issue 12 hardening keys: validated, and errors never echo token material. */
describe('loadConfig hardening keys', () => {
  const problem = (env: Record<string, string>): string => {
    try {
      loadConfig({ env });
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('accepted');
  };

  it('reads the metrics token and the command label cap', () => {
    const c = loadConfig({ env: { CODEQ_METRICS_TOKEN: 'abcdefghijklmnopq', CODEQ_METRICS_MAX_COMMANDS: '50' } });
    expect([c.metricsToken, c.metricsMaxCommands]).toEqual(['abcdefghijklmnopq', 50]);
    expect(loadConfig({ env: {} })).toMatchObject({ metricsToken: '', metricsMaxCommands: 200 });
  });

  it('refuses a short metrics token without echoing it, and a bad cap', () => {
    const msg = problem({ CODEQ_METRICS_TOKEN: 'short-secret' });
    expect(msg).toMatch(/CODEQ_METRICS_TOKEN: must be at least 16 characters/);
    expect(msg).not.toContain('short-secret');
    expect(problem({ CODEQ_METRICS_MAX_COMMANDS: '0' })).toMatch(/CODEQ_METRICS_MAX_COMMANDS/);
  });

  it('denies private webhook targets unless CODEQ_WEBHOOK_ALLOW_PRIVATE is true', () => {
    expect(loadConfig({ env: {} }).webhookAllowPrivate).toBe(false);
    expect(loadConfig({ env: { CODEQ_WEBHOOK_ALLOW_PRIVATE: 'true' } }).webhookAllowPrivate).toBe(true);
    expect(problem({ CODEQ_WEBHOOK_ALLOW_PRIVATE: 'sometimes' })).toMatch(/CODEQ_WEBHOOK_ALLOW_PRIVATE: must be true or false/);
  });
});
