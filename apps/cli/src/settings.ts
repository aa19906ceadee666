/**
 * Where the CLI gets its server URL, token, output format and wire. Precedence, highest first:
 * flags (`--url`, `--token`, `--profile`, `--transport`) > env (`CODEQ_URL`, `CODEQ_TOKEN`,
 * `CODEQ_PROFILE`, `CODEQ_TRANSPORT`, `CODEQ_WORKER_ADDRESS`, `CODEQ_PRODUCER_ADDRESS`; upstream's
 * `CODEQ_BASE_URL`, and `CODEQ_WORKER_TOKEN` / `CODEQ_PRODUCER_TOKEN` when `CODEQ_TOKEN` is unset)
 * > the active profile in `$CODEQ_CONFIG_DIR/config.json` (default `~/.config/codeq/config.json`)
 * > defaults (`http://localhost:8080`, table output, HTTP; stream addresses = the URL's host
 * with upstream's ports 9091 (worker) and 9092 (producer)).
 */
import { CodeqError } from '@codeq/proto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export const DEFAULT_URL = 'http://localhost:8080';
/** Upstream's conventional stream ports (`WORKER_STREAM_ADDR` `:9091`, `PRODUCER_STREAM_ADDR` `:9092`). */
export const DEFAULT_WORKER_PORT = 9091;
export const DEFAULT_PRODUCER_PORT = 9092;
export const PROFILE_KEYS = ['url', 'token', 'output', 'transport', 'workerAddress', 'producerAddress'] as const;
export type ProfileKey = (typeof PROFILE_KEYS)[number];
export type OutputFormat = 'table' | 'json';
/** Wire of `tasks submit` and `worker start` (every other command uses HTTP). */
export type TransportKind = 'http' | 'grpc';

export interface Profile {
  url?: string;
  token?: string;
  output?: OutputFormat;
  transport?: TransportKind;
  /** Worker stream `host:port`. */
  workerAddress?: string;
  /** Producer stream `host:port`. */
  producerAddress?: string;
}

export interface ConfigFile {
  currentProfile?: string;
  profiles: Record<string, Profile>;
}

export type Source = 'flag' | 'env' | 'profile' | 'default';

export interface Settings {
  profile: string;
  url: string;
  urlSource: Source;
  token: string | undefined;
  tokenSource: Source | undefined;
  output: OutputFormat;
  transport: TransportKind;
  transportSource: Source;
  workerAddress: string;
  workerAddressSource: Source;
  producerAddress: string;
  producerAddressSource: Source;
  configFile: string;
}

type Env = Record<string, string | undefined>;

/** `$CODEQ_CONFIG_DIR/config.json`, else `$XDG_CONFIG_HOME/codeq/config.json`, else `~/.config/codeq/config.json`. */
export function configPath(env: Env = process.env): string {
  const dir = env['CODEQ_CONFIG_DIR'] || join(env['XDG_CONFIG_HOME'] || join(homedir(), '.config'), 'codeq');
  return join(dir, 'config.json');
}

export function readConfig(file: string): ConfigFile {
  if (!existsSync(file)) return { profiles: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Partial<ConfigFile>;
  const out: ConfigFile = { profiles: typeof o.profiles === 'object' && o.profiles !== null ? o.profiles : {} };
  if (typeof o.currentProfile === 'string') out.currentProfile = o.currentProfile;
  return out;
}

/** Writes atomically with mode 0600 in a 0700 directory (the file holds tokens). */
export function writeConfig(file: string, cfg: ConfigFile): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  chmodSync(file, 0o600);
}

export interface SettingFlags {
  url?: string | undefined;
  token?: string | undefined;
  profile?: string | undefined;
  transport?: string | undefined;
  workerAddress?: string | undefined;
  producerAddress?: string | undefined;
}

/** `host:port` of a stream on the URL's host (`http://codeq:8080` → `codeq:9091`). */
export function streamAddress(url: string, port: number): string {
  let host = 'localhost';
  try {
    host = new URL(url).hostname || host;
  } catch {
    /* keep localhost */
  }
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

export function activeProfile(cfg: ConfigFile, flags: SettingFlags, env: Env): string {
  return flags.profile || env['CODEQ_PROFILE'] || cfg.currentProfile || 'default';
}

/**
 * `role` picks upstream's token variables when `CODEQ_TOKEN` is unset: worker commands read
 * `CODEQ_WORKER_TOKEN`, then `CODEQ_PRODUCER_TOKEN`; the others the reverse (as upstream's CLI).
 */
export function resolveSettings(flags: SettingFlags, env: Env = process.env, role: 'producer' | 'worker' = 'producer'): Settings {
  const file = configPath(env);
  const cfg = readConfig(file);
  const profile = activeProfile(cfg, flags, env);
  const p = cfg.profiles[profile] ?? {};
  const pick = <T>(...c: Array<[T | undefined, Source]>): [T | undefined, Source | undefined] => {
    for (const [v, s] of c) if (v !== undefined && v !== '') return [v, s];
    return [undefined, undefined];
  };
  const [url, urlSource] = pick<string>([flags.url, 'flag'], [env['CODEQ_URL'] ?? env['CODEQ_BASE_URL'], 'env'], [p.url, 'profile'], [DEFAULT_URL, 'default']);
  const roleTokens = role === 'worker' ? [env['CODEQ_WORKER_TOKEN'], env['CODEQ_PRODUCER_TOKEN']] : [env['CODEQ_PRODUCER_TOKEN'], env['CODEQ_WORKER_TOKEN']];
  const [token, tokenSource] = pick<string>([flags.token, 'flag'], [env['CODEQ_TOKEN'], 'env'], [roleTokens[0], 'env'], [roleTokens[1], 'env'], [p.token, 'profile']);
  const base = (url ?? DEFAULT_URL).replace(/\/+$/, '');
  const [worker, workerSource] = pick<string>([flags.workerAddress, 'flag'], [env['CODEQ_WORKER_ADDRESS'], 'env'], [p.workerAddress, 'profile'], [streamAddress(base, DEFAULT_WORKER_PORT), 'default']);
  const [producer, producerSource] = pick<string>([flags.producerAddress, 'flag'], [env['CODEQ_PRODUCER_ADDRESS'], 'env'], [p.producerAddress, 'profile'], [streamAddress(base, DEFAULT_PRODUCER_PORT), 'default']);
  // An explicit stream address (flag) selects gRPC unless --transport says otherwise, as in the SDKs.
  const impliedGrpc = flags.workerAddress || flags.producerAddress ? 'grpc' : undefined;
  const [transport, transportSource] = pick<string>([flags.transport, 'flag'], [impliedGrpc, 'flag'], [env['CODEQ_TRANSPORT'], 'env'], [p.transport, 'profile'], ['http', 'default']);
  return {
    profile,
    url: base,
    urlSource: urlSource ?? 'default',
    token,
    tokenSource,
    output: p.output === 'json' ? 'json' : 'table',
    transport: checkTransport(transport ?? 'http', transportSource ?? 'default'),
    transportSource: transportSource ?? 'default',
    workerAddress: worker ?? streamAddress(base, DEFAULT_WORKER_PORT),
    workerAddressSource: workerSource ?? 'default',
    producerAddress: producer ?? streamAddress(base, DEFAULT_PRODUCER_PORT),
    producerAddressSource: producerSource ?? 'default',
    configFile: file,
  };
}

function checkTransport(v: string, source: Source): TransportKind {
  if (v === 'http' || v === 'grpc') return v;
  throw new CodeqError('VALIDATION_FAILED', `transport must be http or grpc, got ${JSON.stringify(v)} (${source === 'env' ? 'CODEQ_TRANSPORT' : source})`);
}

/** `abcd...wxyz`; short secrets are fully masked. */
export function mask(secret: string | undefined): string {
  if (!secret) return '<unset>';
  if (secret.length <= 8) return '****';
  return `${secret.slice(0, 4)}...${secret.slice(-4)}`;
}
