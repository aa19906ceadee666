/**
 * One typed configuration. Sources, lowest first: defaults, the YAML file at CODEQ_CONFIG_PATH,
 * environment variables (upstream's names, see keys.ts), then `overrides` (tests only).
 * Every invalid value is reported at once, naming its key; the result is frozen.
 * This is the only module that reads process.env (main.ts passes it in).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { BACKOFF_POLICIES, type BackoffPolicy } from '../domain/backoff.js';
import { CONFIG_KEYS, type YamlKey } from './keys.js';

export type AuthProviderConfig = { provider: string; config: unknown } | null;

export interface RateLimitBucket {
  requestsPerMinute: number;
  burstSize: number;
}

/** The embedded engine (one process per data directory) or PostgreSQL (N replicas on one database). */
export type PersistenceConfig =
  | { provider: 'sqlite'; path: string; fsyncOnCommit: boolean }
  | { provider: 'postgres'; url: string; poolSize: number };

export interface Config {
  host: string;
  port: number;
  env: string;
  timezone: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  logFormat: 'json' | 'text';
  persistence: PersistenceConfig;
  producerAuth: AuthProviderConfig;
  workerAuth: AuthProviderConfig;
  allowProducerAsWorker: boolean;
  /** Token buckets per caller (disabled unless both numbers are > 0). */
  rateLimit: { producer: RateLimitBucket; worker: RateLimitBucket; admin: RateLimitBucket; webhook: RateLimitBucket };
  workerStreamAddr: string;
  producerStreamAddr: string;
  localArtifactsDir: string;
  defaultLeaseSeconds: number;
  requeueInspectLimit: number;
  maxAttemptsDefault: number;
  backoff: { policy: BackoffPolicy; baseSeconds: number; maxSeconds: number };
  webhookHmacSecret: string;
  resultWebhookMaxAttempts: number;
  resultWebhookBaseBackoffSeconds: number;
  resultWebhookMaxBackoffSeconds: number;
  /** Per-attempt timeout of outgoing webhooks. */
  webhookTimeoutMs: number;
  /** Result webhook outbox: rows kept at most (the oldest beyond are dropped and counted). */
  webhookOutboxMaxRows: number;
  /** How often a replica looks for due outbox rows (retries, rows written by other replicas). */
  webhookOutboxPollMs: number;
  /** A delivery stops retrying this long after the task finished. */
  webhookMaxAgeSeconds: number;
  subscriptionCleanupIntervalSeconds: number;
  /** Accepted for compatibility; unused, as upstream (per-subscription minIntervalSeconds applies). */
  subscriptionMinIntervalSeconds: number;
  /** How long terminal tasks (and their results and idempotency keys) are kept. */
  retentionSeconds: number;
  /** Largest accepted request body (413 above). */
  maxBodyBytes: number;
  shutdownGraceSeconds: number;
  /** Bearer token required by GET /metrics ('' = open, as upstream). */
  metricsToken: string;
  /** Distinct `command` label values in metrics; later commands are reported as `other`. */
  metricsMaxCommands: number;
  /** Let webhooks and subscription callbacks reach loopback, link-local and private addresses. */
  webhookAllowPrivate: boolean;
  /** The built web dashboard served at /ui: '' = the @codeq/dashboard package's dist/, 'off' = not served. */
  dashboardDir: string;
}

// eslint-disable-next-line no-control-regex
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f]/;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid config: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** Environment (main passes process.env; tests pass {}). */
  env?: Record<string, string | undefined>;
  /** YAML file path; defaults to env CODEQ_CONFIG_PATH. */
  file?: string;
  /** Highest-precedence values by YAML key (tests). */
  overrides?: Partial<Record<YamlKey, unknown>>;
}

const DEFAULTS: Record<YamlKey, unknown> = {
  port: 8080,
  host: '0.0.0.0',
  env: 'dev',
  timezone: 'UTC',
  logLevel: 'info',
  logFormat: 'json',
  persistenceProvider: 'sqlite',
  persistenceConfig: { path: './data', fsyncOnCommit: false },
  producerAuthProvider: '',
  producerAuthConfig: '',
  workerAuthProvider: '',
  workerAuthConfig: '',
  allowProducerAsWorker: false,
  identityJwksUrl: '',
  identityIssuer: '',
  identityAudience: '',
  workerJwksUrl: '',
  workerIssuer: '',
  workerAudience: 'codeq-worker',
  allowedClockSkewSeconds: 60,
  rateLimit: {},
  workerStreamAddr: '',
  producerStreamAddr: '',
  localArtifactsDir: '/tmp/codeq-artifacts',
  defaultLeaseSeconds: 300,
  requeueInspectLimit: 200,
  maxAttemptsDefault: 5,
  backoffPolicy: 'exp_full_jitter',
  backoffBaseSeconds: 5,
  backoffMaxSeconds: 900,
  webhookHmacSecret: '',
  resultWebhookMaxAttempts: 5,
  resultWebhookBaseBackoffSeconds: 2,
  resultWebhookMaxBackoffSeconds: 60,
  webhookTimeoutMs: 15000,
  webhookOutboxMaxRows: 100_000,
  webhookOutboxPollMs: 1000,
  webhookMaxAgeSeconds: 3600,
  subscriptionCleanupIntervalSeconds: 60,
  subscriptionMinIntervalSeconds: 5,
  retentionSeconds: 86400,
  maxBodyBytes: 1048576,
  shutdownGraceSeconds: 10,
  metricsToken: '',
  metricsMaxCommands: 200,
  webhookAllowPrivate: false,
  dashboardDir: '',
};

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? {};
  const problems: string[] = [];
  const values: Record<string, unknown> = { ...DEFAULTS };
  const source: Record<string, string> = {};
  for (const k of Object.keys(DEFAULTS)) source[k] = k;

  const file = opts.file ?? env['CODEQ_CONFIG_PATH'] ?? '';
  if (file.trim()) {
    let text: string | null = null;
    try {
      text = readFileSync(file.trim(), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') problems.push(`CODEQ_CONFIG_PATH: cannot read ${file}: ${(e as Error).message}`);
    }
    if (text !== null) {
      try {
        const doc = parseYaml(text) as unknown;
        if (doc !== null && doc !== undefined) {
          if (typeof doc !== 'object' || Array.isArray(doc)) problems.push(`CODEQ_CONFIG_PATH: ${file} must hold a YAML mapping`);
          else {
            for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
              if (!(k in DEFAULTS)) {
                problems.push(`${k}: unknown configuration key in ${file}`);
                continue;
              }
              values[k] = v;
              source[k] = `${k} (${file})`;
            }
          }
        }
      } catch (e) {
        problems.push(`CODEQ_CONFIG_PATH: ${file} is not valid YAML: ${(e as Error).message}`);
      }
    }
  }

  for (const { yaml, env: name } of CONFIG_KEYS) {
    const v = env[name];
    if (v !== undefined && v !== '') {
      values[yaml] = v;
      source[yaml] = name;
    }
  }
  for (const [k, v] of Object.entries(opts.overrides ?? {})) {
    if (v !== undefined) {
      values[k] = v;
      source[k] = `${k} (override)`;
    }
  }

  const name = (k: YamlKey) => source[k] ?? k;
  const int = (k: YamlKey, min: number, max: number): number => {
    const v = values[k];
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name(k)}: must be an integer between ${min} and ${max}, got ${JSON.stringify(v)}`);
      return Number(DEFAULTS[k]);
    }
    return n;
  };
  const str = (k: YamlKey): string => {
    const v = values[k];
    if (v === null || v === undefined) return '';
    if (typeof v !== 'string' && typeof v !== 'number') {
      problems.push(`${name(k)}: must be a string`);
      return String(DEFAULTS[k]);
    }
    return String(v).trim();
  };
  const bool = (k: YamlKey): boolean => {
    const v = values[k];
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string') {
      const s = v.trim().toLowerCase();
      if (['true', '1', 'yes'].includes(s)) return true;
      if (['false', '0', 'no', ''].includes(s)) return false;
    }
    problems.push(`${name(k)}: must be true or false, got ${JSON.stringify(v)}`);
    return false;
  };
  const oneOf = <T extends string>(k: YamlKey, allowed: readonly T[]): T => {
    const s = str(k).toLowerCase() as T;
    if (!allowed.includes(s)) {
      problems.push(`${name(k)}: must be one of ${allowed.join(', ')}, got ${JSON.stringify(values[k])}`);
      return DEFAULTS[k] as T;
    }
    return s;
  };
  /** JSON-typed keys accept a YAML mapping or a JSON string (auth.md §9 #1). */
  const json = (k: YamlKey): unknown => {
    const v = values[k];
    if (typeof v !== 'string') return v;
    const s = v.trim();
    if (!s) return undefined;
    if (s.startsWith('{') || s.startsWith('[') || s.startsWith('"')) {
      try {
        return JSON.parse(s) as unknown;
      } catch (e) {
        // Only the position: the parser's message quotes the input, which may hold a token (issue 12 item 13).
        const at = /position \d+/.exec((e as Error).message);
        problems.push(`${name(k)}: invalid JSON${at ? ` (${at[0]})` : ''}`);
        return undefined;
      }
    }
    return s; // a bare string (e.g. a static token)
  };

  // Persistence
  const providerRaw = str('persistenceProvider').toLowerCase();
  const provider = ['postgres', 'postgresql'].includes(providerRaw) ? 'postgres' : 'sqlite';
  if (!['sqlite', 'pebble', 'postgres', 'postgresql', ''].includes(providerRaw)) {
    problems.push(`${name('persistenceProvider')}: unsupported persistence provider ${JSON.stringify(providerRaw)} (use sqlite or postgres; pebble is accepted as an alias of sqlite)`);
  }
  const pc = json('persistenceConfig');
  let path = './data';
  let fsyncOnCommit = false;
  let url = '';
  let poolSize = 10;
  const example = provider === 'postgres' ? '{"url":"postgres://user:password@host:5432/codeq","poolSize":10}' : '{"path":"/var/lib/codeq","fsyncOnCommit":false}';
  if (pc !== undefined && (typeof pc !== 'object' || pc === null || Array.isArray(pc))) {
    problems.push(`${name('persistenceConfig')}: must be a JSON object like ${example}`);
  } else if (provider === 'sqlite' && pc !== undefined) {
    const o = pc as Record<string, unknown>;
    if (o['path'] !== undefined) {
      if (typeof o['path'] !== 'string' || !o['path'].trim()) problems.push(`${name('persistenceConfig')}: "path" must be a non-empty string`);
      else path = o['path'].trim();
    }
    if (o['fsyncOnCommit'] !== undefined) {
      if (typeof o['fsyncOnCommit'] !== 'boolean') problems.push(`${name('persistenceConfig')}: "fsyncOnCommit" must be true or false`);
      else fsyncOnCommit = o['fsyncOnCommit'];
    }
  } else if (provider === 'postgres') {
    const o = (pc ?? {}) as Record<string, unknown>;
    const u = o['url'];
    if (typeof u !== 'string' || !u.trim()) problems.push(`${name('persistenceConfig')}: "url" is required with the postgres provider, like ${example}`);
    else if (!/^postgres(ql)?:\/\/[^/]/.test(u.trim())) problems.push(`${name('persistenceConfig')}: "url" must be a postgres:// or postgresql:// URL`);
    else url = u.trim();
    if (o['poolSize'] !== undefined) {
      const n = o['poolSize'];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1000) problems.push(`${name('persistenceConfig')}: "poolSize" must be an integer from 1 to 1000`);
      else poolSize = n;
    }
  }

  const skewSeconds = int('allowedClockSkewSeconds', 0, 3600);
  /** Upstream's auto-configuration: a JWKS URL alone configures a `jwks` validator (auth.md §3.2). */
  const autoJwks = (urlKey: YamlKey, issuerKey: YamlKey, audienceKey: YamlKey): AuthProviderConfig => {
    const jwksUrl = str(urlKey);
    if (!jwksUrl) return null;
    const issuer = str(issuerKey).replace(/\/+$/, '');
    const audience = str(audienceKey);
    if (!issuer) problems.push(`${name(issuerKey)}: required when ${name(urlKey)} is set`);
    if (!audience) problems.push(`${name(audienceKey)}: required when ${name(urlKey)} is set`);
    return { provider: 'jwks', config: { jwksUrl, issuer, audience, clockSkew: skewSeconds * 1e9, httpTimeout: 5e9 } };
  };
  const auth = (pk: YamlKey, ck: YamlKey, auto: () => AuthProviderConfig): AuthProviderConfig => {
    const provider = str(pk).toLowerCase();
    const config = json(ck);
    if (!provider) {
      if (config !== undefined && config !== '') problems.push(`${name(ck)}: set ${name(pk)} too (static, jwks or multi)`);
      return auto();
    }
    return { provider, config };
  };
  const bucket = (which: string): RateLimitBucket => {
    const rl = json('rateLimit');
    const b = rl && typeof rl === 'object' && !Array.isArray(rl) ? (rl as Record<string, unknown>)[which] : undefined;
    if (b === undefined || b === null) return { requestsPerMinute: 0, burstSize: 0 };
    if (typeof b !== 'object' || Array.isArray(b)) {
      problems.push(`${name('rateLimit')}: ${which} must be an object {requestsPerMinute, burstSize}`);
      return { requestsPerMinute: 0, burstSize: 0 };
    }
    const o = b as Record<string, unknown>;
    const n = (k: string) => {
      const v = o[k] ?? 0;
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        problems.push(`${name('rateLimit')}: ${which}.${k} must be an integer`);
        return 0;
      }
      return Math.max(0, v);
    };
    return { requestsPerMinute: n('requestsPerMinute'), burstSize: n('burstSize') };
  };

  const logLevel = oneOf('logLevel', ['debug', 'info', 'warn', 'error', 'silent'] as const);
  const logFormat = oneOf('logFormat', ['json', 'text'] as const);
  const policyRaw = str('backoffPolicy').toLowerCase();
  const policy: BackoffPolicy = (BACKOFF_POLICIES as readonly string[]).includes(policyRaw) ? (policyRaw as BackoffPolicy) : 'exp_full_jitter';
  if (policyRaw && policy !== policyRaw) problems.push(`${name('backoffPolicy')}: must be one of ${BACKOFF_POLICIES.join(', ')}`);

  const cfg: Config = {
    host: str('host') || '0.0.0.0',
    port: int('port', 0, 65535),
    env: str('env') || 'dev',
    timezone: str('timezone') || 'UTC',
    logLevel,
    logFormat,
    persistence: provider === 'postgres' ? { provider, url, poolSize } : { provider: 'sqlite', path, fsyncOnCommit },
    producerAuth: auth('producerAuthProvider', 'producerAuthConfig', () => autoJwks('identityJwksUrl', 'identityIssuer', 'identityAudience')),
    workerAuth: auth('workerAuthProvider', 'workerAuthConfig', () => autoJwks('workerJwksUrl', 'workerIssuer', 'workerAudience')),
    allowProducerAsWorker: bool('allowProducerAsWorker'),
    rateLimit: { producer: bucket('producer'), worker: bucket('worker'), admin: bucket('admin'), webhook: bucket('webhook') },
    workerStreamAddr: str('workerStreamAddr'),
    producerStreamAddr: str('producerStreamAddr'),
    localArtifactsDir: str('localArtifactsDir') || '/tmp/codeq-artifacts',
    defaultLeaseSeconds: int('defaultLeaseSeconds', 1, 86400),
    requeueInspectLimit: int('requeueInspectLimit', 1, 1_000_000),
    maxAttemptsDefault: int('maxAttemptsDefault', 1, 1000),
    backoff: { policy, baseSeconds: int('backoffBaseSeconds', 0, 86400), maxSeconds: int('backoffMaxSeconds', 0, 7 * 86400) },
    webhookHmacSecret: str('webhookHmacSecret'),
    resultWebhookMaxAttempts: int('resultWebhookMaxAttempts', 1, 100),
    resultWebhookBaseBackoffSeconds: int('resultWebhookBaseBackoffSeconds', 0, 3600),
    resultWebhookMaxBackoffSeconds: int('resultWebhookMaxBackoffSeconds', 0, 86400),
    webhookTimeoutMs: int('webhookTimeoutMs', 100, 120_000),
    webhookOutboxMaxRows: int('webhookOutboxMaxRows', 1, 100_000_000),
    webhookOutboxPollMs: int('webhookOutboxPollMs', 10, 60_000),
    webhookMaxAgeSeconds: int('webhookMaxAgeSeconds', 1, 30 * 86400),
    subscriptionCleanupIntervalSeconds: int('subscriptionCleanupIntervalSeconds', 1, 86400),
    subscriptionMinIntervalSeconds: int('subscriptionMinIntervalSeconds', 0, 86400),
    retentionSeconds: int('retentionSeconds', 0, 10 * 365 * 86400),
    maxBodyBytes: int('maxBodyBytes', 1024, 256 * 1024 * 1024),
    shutdownGraceSeconds: int('shutdownGraceSeconds', 0, 3600),
    metricsToken: str('metricsToken'),
    metricsMaxCommands: int('metricsMaxCommands', 1, 100_000),
    webhookAllowPrivate: bool('webhookAllowPrivate'),
    dashboardDir: str('dashboardDir'),
  };
  for (const [k, v] of [['workerStreamAddr', cfg.workerStreamAddr], ['producerStreamAddr', cfg.producerStreamAddr]] as const) {
    if (v && !/^([^\s:]*|\[[0-9a-fA-F:]+\]):\d{1,5}$/.test(v)) problems.push(`${name(k)}: must be host:port or :port, got ${JSON.stringify(v)}`);
  }
  if (cfg.metricsToken && (cfg.metricsToken.length < 16 || CONTROL_OR_SPACE.test(cfg.metricsToken))) {
    // Never echo the token itself (issue 12 item 13).
    problems.push(`${name('metricsToken')}: must be at least 16 characters without spaces or control characters`);
  }
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(cfg);
}

/** Parse `host:port` / `:port` into parts (host defaults to all interfaces). */
export function parseListenAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
  return { host, port: Number(addr.slice(i + 1)) };
}
