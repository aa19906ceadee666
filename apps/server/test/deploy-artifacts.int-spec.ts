/**
 * Deployment artefacts against the server's configuration surface: the Dockerfile, the compose
 * files (with their env files), the Prometheus/Grafana files and the Helm chart. There is no helm
 * or docker binary in CI, so this reads the files: every env variable and config-file key they set
 * must be one the server accepts (keys.ts), every `.Values.x` a template uses must exist in
 * values.yaml, and every metric an alert or panel queries must be one the server exports.
 * Multi-replica stacks (PostgreSQL) are checked for what makes them work: the database service the
 * url names, a shared artifacts volume, a balancer that knows every replica.
 * No network, no docker, no server process.
 */
import 'reflect-metadata';
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/config/config.js';
import { CONFIG_KEYS, ENV_VARS, YAML_KEYS } from '../src/config/keys.js';
import { staticValidator } from '../src/modules/auth/validators.js';
import { MetricsService } from '../src/modules/metrics/metrics.service.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CHART = join(ROOT, 'helm', 'codeq');
const COMPOSE = join(ROOT, 'deploy', 'docker-compose');
const read = (...p: string[]) => readFileSync(join(...p), 'utf8');
const rel = (p: string) => relative(ROOT, p);
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Names in `names` that the server does not accept, for readable failures. */
const unknownEnv = (names: Iterable<string>) => [...new Set(names)].filter((n) => !ENV_VARS.includes(n)).sort();
const unknownYaml = (keys: Iterable<string>) => [...new Set(keys)].filter((k) => !YAML_KEYS.includes(k)).sort();

/** `NAME=VALUE` lines, read literally as `docker run --env-file` and compose's env_file do. */
function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const i = line.indexOf('=');
    if (i <= 0) throw new Error(`not NAME=VALUE: ${line}`);
    out[line.slice(0, i).trim()] = line.slice(i + 1);
  }
  return out;
}

/** Loads a config the way main.ts does (env, optional file) and returns the problems, if any. */
function configProblems(env: Record<string, string>, file?: object): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'codeq-deploy-'));
  try {
    let path: string | undefined;
    if (file) {
      path = join(dir, 'codeq.yaml');
      writeFileSync(path, JSON.stringify(file)); // JSON is YAML
    }
    loadConfig({ env, ...(path ? { file: path } : {}) });
    return [];
  } catch (e) {
    return (e as { problems?: string[] }).problems ?? [(e as Error).message];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Metric families the server registers (application metrics and Node/process defaults). */
function exportedMetrics(): Set<string> {
  const fakeStore = {}; // only read by the depth gauges' collect(), which listing does not run
  const Ctor = MetricsService as unknown as new (...args: unknown[]) => MetricsService;
  const svc = new Ctor(fakeStore);
  return new Set(svc.registry.getMetricsAsArray().map((m) => m.name));
}

/** `codeq_*`, `process_*` and `nodejs_*` names in a PromQL text, histogram suffixes removed. */
function referencedMetrics(promql: string): string[] {
  const names = promql.match(/\b(?:codeq|process|nodejs)_[a-z0-9_]+\b/g) ?? [];
  return names.map((n) => n.replace(/_(bucket|sum|count)$/, ''));
}

/** The Dockerfile's instructions per stage (continuation lines joined, comments dropped). */
function dockerStages(text: string): string[][] {
  const instructions = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const stages: string[][] = [];
  for (const ins of instructions) {
    if (/^FROM\s/i.test(ins)) stages.push([]);
    stages.at(-1)?.push(ins);
  }
  return stages;
}

/** The `ENV` variables of a stage. */
function envOf(stage: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.filter((i) => /^ENV\s/i.test(i))) {
    for (const m of ins.slice(4).matchAll(/([A-Za-z_][A-Za-z0-9_]*)=('([^']*)'|"((?:[^"\\]|\\.)*)"|(\S*))/g)) {
      env[m[1]!] = m[3] ?? m[4]?.replace(/\\(.)/g, '$1') ?? m[5] ?? '';
    }
  }
  return env;
}

describe('Dockerfile', () => {
  const text = read(ROOT, 'Dockerfile');
  const stages = dockerStages(text);
  const runtime = stages.at(-1) ?? [];

  it('is multi-stage, both stages on the same Node image by default', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const froms = stages.map((s) => s[0]!.split(/\s+/)[1]);
    // better-sqlite3's binary is built for the build stage's Node ABI: the build stage's image
    // (BUILD_NODE_IMAGE, which scripts/image.sh sets to its local build base) defaults to the
    // runtime's NODE_IMAGE.
    expect(froms[0]).toBe('${BUILD_NODE_IMAGE}');
    expect(froms.at(-1)).toBe('${NODE_IMAGE}');
    expect(text).toMatch(/^ARG NODE_IMAGE=node:(22|24)-bookworm-slim$/m);
    expect(text).toMatch(/^ARG BUILD_NODE_IMAGE=\$\{NODE_IMAGE\}$/m);
  });

  it('builds the bundle with scripts/build-bundle.sh, which exists and is executable', () => {
    expect(stages.slice(0, -1).flat().some((i) => /^RUN\s.*scripts\/build-bundle\.sh/.test(i))).toBe(true);
    accessSync(join(ROOT, 'scripts', 'build-bundle.sh'), constants.R_OK);
    expect(runtime.some((i) => /^COPY\s+--from=/.test(i))).toBe(true);
    expect(runtime.some((i) => /^RUN\s.*apt-get install/.test(i))).toBe(false); // no build tools at runtime
  });

  it('sets only environment variables the server reads, and a config it accepts', () => {
    const env = envOf(runtime);
    expect(Object.keys(env).length).toBeGreaterThan(0);
    expect(unknownEnv(Object.keys(env))).toEqual([]);
    expect(JSON.parse(env['PERSISTENCE_CONFIG']!)).toMatchObject({ path: expect.stringMatching(/^\/var\/lib\/codeq\//) });
    expect(env['LOCAL_ARTIFACTS_DIR']).toMatch(/^\/var\/lib\/codeq\//);
    expect(configProblems(env)).toEqual([]);
  });

  it('exposes 8080, 9091 and 9092, runs as a non-root user, starts the bundled server', () => {
    const exposed = runtime.filter((i) => /^EXPOSE\s/i.test(i)).flatMap((i) => i.split(/\s+/).slice(1).map((p) => p.split('/')[0]));
    expect(exposed).toEqual(expect.arrayContaining(['8080', '9091', '9092']));
    const users = runtime.filter((i) => /^USER\s/i.test(i)).map((i) => i.split(/\s+/)[1]!.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
    expect(runtime.find((i) => /^(ENTRYPOINT|CMD)\s/.test(i))).toMatch(/dist\/main\.js/);
    expect(runtime.some((i) => /^HEALTHCHECK\s.*\/healthz/.test(i))).toBe(true);
  });

  it('keeps dependencies and build output out of the build context', () => {
    const ignore = read(ROOT, '.dockerignore').split('\n').map((l) => l.trim());
    expect(ignore).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git']));
    expect(ignore).not.toContain('scripts/');
  });
});

/** A compose service's `NAME:target[:mode]` volume entries as [source, target]. */
const mountsOf = (svc: Obj) => ((svc['volumes'] ?? []) as unknown[]).map((v) => String(v).split(':') as [string, string, ...string[]]);
/** Container ports a compose service publishes. */
const publishedOf = (svc: Obj) => ((svc['ports'] ?? []) as unknown[]).map((p) => String(p).split(':').at(-1)!.split('/')[0]!);
/** The image's default environment (Dockerfile runtime stage), e.g. LOCAL_ARTIFACTS_DIR. */
const imageEnv = () => envOf(dockerStages(read(ROOT, 'Dockerfile')).at(-1) ?? []);

describe('docker compose files', () => {
  const files = readdirSync(COMPOSE, { recursive: true, encoding: 'utf8' })
    .filter((f) => /(^|\/)compose\.ya?ml$/.test(f))
    .map((f) => join(COMPOSE, f));

  it('include the single-node, observability and postgres-replicas stacks', () => {
    expect(files.map(rel).sort()).toEqual([
      'deploy/docker-compose/observability/compose.yaml',
      'deploy/docker-compose/postgres-replicas/compose.yaml',
      'deploy/docker-compose/single-node/compose.yaml',
    ]);
  });

  describe.each(files.map((f) => [rel(f), f] as const))('%s', (_name, file) => {
    // Compose resolves YAML merge keys (`<<: *codeq`), so the test does too.
    const doc = parseYaml(read(file), { merge: true }) as { services: Record<string, Obj>; volumes?: Obj };
    const namedVolumes = Object.keys(doc.volumes ?? {});
    const codeq = Object.entries(doc.services).filter(([, s]) => typeof s['image'] === 'string' && s['image'].includes('codeq-server'));
    const envOfService = (name: string, svc: Obj) => {
      const envFiles = ([] as unknown[]).concat(svc['env_file'] ?? []).map((e) => (isObj(e) ? String(e['path']) : String(e)));
      const env: Record<string, string> = {};
      for (const f of envFiles) {
        const path = join(dirname(file), f);
        if (!existsSync(path)) {
          // .gitignore ignores `codeq.env`: the deploy copies must be re-included explicitly.
          throw new Error(`${rel(path)} (env_file of service ${name}) is missing; is it ignored by .gitignore?`);
        }
        Object.assign(env, parseEnvFile(readFileSync(path, 'utf8')));
      }
      const environment = svc['environment'];
      if (Array.isArray(environment)) for (const e of environment as string[]) env[e.split('=')[0]!] = e.slice(e.indexOf('=') + 1);
      else if (isObj(environment)) for (const [k, v] of Object.entries(environment)) env[k] = typeof v === 'string' ? v : JSON.stringify(v ?? '');
      return env;
    };
    const isPostgres = (env: Record<string, string>) => ['postgres', 'postgresql'].includes((env['PERSISTENCE_PROVIDER'] ?? '').toLowerCase());

    it('runs codeQ with env variables the server reads and a config it accepts', () => {
      expect(codeq.length).toBeGreaterThan(0);
      // The stack publishes the HTTP and both gRPC ports: on codeQ itself, or on a balancer.
      expect(Object.values(doc.services).flatMap(publishedOf)).toEqual(expect.arrayContaining(['8080', '9091', '9092']));
      for (const [name, svc] of codeq) {
        const env = envOfService(name, svc);
        expect(unknownEnv(Object.keys(env))).toEqual([]);
        expect(configProblems(env)).toEqual([]);

        if (isPostgres(env)) {
          // The url names a database service of this file, whose data is on a named volume, and
          // the replica waits for it to be healthy.
          const url = new URL((JSON.parse(env['PERSISTENCE_CONFIG'] ?? '{}') as { url?: string }).url ?? '');
          const db = doc.services[url.hostname];
          expect(db).toBeDefined();
          const pgdata = (isObj(db!['environment']) && typeof db!['environment']['PGDATA'] === 'string' ? db!['environment']['PGDATA'] : '/var/lib/postgresql/data').replace(/\/+$/, '');
          const dbMount = mountsOf(db!).find(([, target]) => pgdata === target.replace(/\/+$/, '') || pgdata.startsWith(`${target.replace(/\/+$/, '')}/`));
          expect(dbMount).toBeDefined();
          expect(namedVolumes).toContain(dbMount![0]);
          expect(db!['healthcheck']).toBeDefined();
          expect(svc['depends_on']).toMatchObject({ [url.hostname]: { condition: 'service_healthy' } });
        } else {
          // Durability: the data directory is a named volume.
          const dataPath = (JSON.parse(env['PERSISTENCE_CONFIG'] ?? '{}') as { path?: string }).path;
          expect(dataPath).toBeDefined();
          const dataMount = mountsOf(svc).find(([, target]) => target === dataPath);
          expect(dataMount).toBeDefined();
          expect(namedVolumes).toContain(dataMount![0]);

          expect(publishedOf(svc)).toEqual(expect.arrayContaining(['8080', '9091', '9092']));
        }
      }
    });

    const replicas = codeq.filter(([name, svc]) => isPostgres(envOfService(name, svc)));
    if (replicas.length > 1) {
      it('shares one artifacts volume between the replicas and balances over all of them', () => {
        // Artifacts are written on the replica that took the result and served by any replica.
        const sources = replicas.map(([name, svc]) => {
          const dir = envOfService(name, svc)['LOCAL_ARTIFACTS_DIR'] ?? imageEnv()['LOCAL_ARTIFACTS_DIR'];
          return mountsOf(svc).find(([, target]) => target === dir)?.[0];
        });
        expect(sources[0]).toBeDefined();
        expect(namedVolumes).toContain(sources[0]);
        expect(new Set(sources)).toEqual(new Set([sources[0]]));

        // No replica publishes ports of its own; one balancer publishes 8080/9091/9092 and its
        // config (a file mounted from this directory) names every replica on every port.
        for (const [, svc] of replicas) expect(publishedOf(svc)).toEqual([]);
        const lbs = Object.entries(doc.services).filter(([, s]) => ['8080', '9091', '9092'].every((p) => publishedOf(s).includes(p)));
        expect(lbs).toHaveLength(1);
        const [lbName, lb] = lbs[0]!;
        const confs = mountsOf(lb).filter(([src]) => src.startsWith('./'));
        expect(confs.length).toBeGreaterThan(0);
        const conf = confs.map(([src]) => read(dirname(file), src)).join('\n');
        for (const [name] of replicas) for (const port of ['8080', '9091', '9092']) expect(conf).toContain(`${name}:${port}`);
        expect(Object.keys((lb['depends_on'] ?? {}) as Obj).sort()).toEqual(replicas.map(([n]) => n).sort());
        expect(lbName).not.toMatch(/^codeq-\d+$/);
      });
    }
  });

  it('uses the seed page values in single-node/codeq.env', () => {
    const env = parseEnvFile(read(COMPOSE, 'single-node', 'codeq.env'));
    expect(env).toMatchObject({ PORT: '8080', PERSISTENCE_PROVIDER: 'pebble', PRODUCER_AUTH_PROVIDER: 'static', WORKER_AUTH_PROVIDER: 'static', WORKER_STREAM_ADDR: ':9091', PRODUCER_STREAM_ADDR: ':9092' });
    expect(JSON.parse(env['PERSISTENCE_CONFIG']!)).toEqual({ path: '/var/lib/codeq/pebble' });
    expect(JSON.parse(env['PRODUCER_AUTH_CONFIG']!)).toMatchObject({ token: 'dev-token', raw: { role: 'ADMIN', tenantId: 'dev-tenant' } });
    expect(JSON.parse(env['WORKER_AUTH_CONFIG']!)).toMatchObject({ token: 'dev-token', raw: { tenantId: 'dev-tenant' } });
  });
});

/** The body of each `name {` block at the top level of an nginx config (comments removed). */
function nginxBlocks(text: string, name: string): string[] {
  const src = text.replace(/#[^\n]*/g, '');
  const out: string[] = [];
  for (const m of src.matchAll(new RegExp(`(^|[;{}\\s])${name}(\\s+[^{;]*)?\\{`, 'g'))) {
    let depth = 1;
    let i = m.index + m[0].length;
    const start = i;
    for (; i < src.length && depth > 0; i++) depth += src[i] === '{' ? 1 : src[i] === '}' ? -1 : 0;
    out.push(src.slice(start, i - 1));
  }
  return out;
}

describe('postgres-replicas stack', () => {
  const dir = join(COMPOSE, 'postgres-replicas');
  const doc = parseYaml(read(dir, 'compose.yaml'), { merge: true }) as { services: Record<string, Obj>; volumes?: Obj };
  const env = parseEnvFile(read(dir, 'codeq.env'));
  const replicas = Object.keys(doc.services).filter((n) => /^codeq-\d+$/.test(n));
  const pc = JSON.parse(env['PERSISTENCE_CONFIG']!) as { url: string; poolSize: number };

  it('runs three codeQ replicas on one postgres:15 with a named volume and a healthcheck', () => {
    expect(replicas.sort()).toEqual(['codeq-1', 'codeq-2', 'codeq-3']);
    expect(env['PERSISTENCE_PROVIDER']).toBe('postgres');
    const db = doc.services[new URL(pc.url).hostname]!;
    expect(db['image']).toMatch(/^postgres:15(\.|-|$)/);
    expect(JSON.stringify(db['healthcheck'])).toContain('pg_isready');
    const same = (k: string) => new Set(replicas.map((r) => JSON.stringify(doc.services[r]![k]))).size;
    for (const k of ['image', 'build', 'env_file', 'volumes']) expect(same(k)).toBe(1); // one image, one config
    expect(doc.services[replicas[0]!]!['build']).toEqual((parseYaml(read(COMPOSE, 'single-node', 'compose.yaml')) as { services: Record<string, Obj> }).services['codeq']!['build']);
  });

  it('keeps synchronous_commit at its default and sizes max_connections for the replicas', () => {
    const db = doc.services[new URL(pc.url).hostname]!;
    const settings = JSON.stringify([db['command'], db['environment']]);
    expect(settings).not.toMatch(/synchronous_commit/);
    const maxConnections = Number(/max_connections=(\d+)/.exec(settings)?.[1] ?? 100); // PostgreSQL's default is 100
    expect(maxConnections).toBeGreaterThanOrEqual(replicas.length * (pc.poolSize + 2) + 10);
    expect(read(dir, 'compose.yaml')).toMatch(/synchronous_commit[^\n]*default \(on\)/); // and says so
  });

  it('balances HTTP with least_conn and the gRPC ports as TCP streams over every replica', () => {
    const lb = Object.values(doc.services).find((s) => mountsOf(s).some(([src]) => src === './nginx.conf'))!;
    expect(mountsOf(lb).find(([src]) => src === './nginx.conf')?.[1]).toBe('/etc/nginx/nginx.conf');
    const conf = read(dir, 'nginx.conf');
    const [http] = nginxBlocks(conf, 'http');
    const [stream] = nginxBlocks(conf, 'stream');
    expect(http).toBeDefined();
    expect(stream).toBeDefined();
    /** upstream name → its body, in a block. */
    const upstreams = (block: string) => Object.fromEntries([...block.matchAll(/upstream\s+(\S+)\s*\{([^}]*)\}/g)].map((m) => [m[1]!, m[2]!]));
    const serversOf = (body: string) => [...body.matchAll(/^\s*server\s+(\S+)/gm)].map((m) => m[1]!).sort();
    /** The upstream a `server { listen <port>; ... proxy_pass ... }` of a block sends to. */
    const target = (block: string, port: string) => {
      const server = nginxBlocks(block, 'server').find((b) => new RegExp(`listen\\s+${port}\\s*;`).test(b));
      return /proxy_pass\s+(?:http:\/\/)?([^;\s]+)\s*;/.exec(server ?? '')?.[1];
    };
    const httpUp = upstreams(http!)[target(http!, '8080')!];
    expect(httpUp).toMatch(/least_conn;/);
    expect(serversOf(httpUp!)).toEqual(replicas.map((r) => `${r}:8080`).sort());
    for (const port of ['9091', '9092']) {
      const up = upstreams(stream!)[target(stream!, port)!];
      expect(serversOf(up ?? '')).toEqual(replicas.map((r) => `${r}:${port}`).sort());
    }
  });
});

describe('observability stack', () => {
  const obs = join(COMPOSE, 'observability');
  const metrics = exportedMetrics();

  it('scrapes codeq:8080/metrics and loads the alerting rules it mounts', () => {
    const prom = parseYaml(read(obs, 'prometheus', 'prometheus.yml')) as { rule_files: string[]; scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[] }> }> };
    const job = prom.scrape_configs.find((j) => j.job_name === 'codeq');
    expect(job?.static_configs.flatMap((s) => s.targets)).toContain('codeq:8080');
    expect(job?.metrics_path ?? '/metrics').toBe('/metrics');
    const compose = read(obs, 'compose.yaml');
    for (const f of prom.rule_files) expect(compose).toContain(`:${f}:ro`);
  });

  it('alerts only on metrics the server exports', () => {
    const rules = parseYaml(read(obs, 'prometheus', 'alerting-rules.yml')) as { groups: Array<{ rules: Array<{ alert: string; expr: string; labels: Obj; annotations: Obj }> }> };
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.map((r) => r.alert)).toEqual(
      expect.arrayContaining(['CodeqDLQGrowing', 'CodeqDLQCritical', 'CodeqQueueBacklogHigh', 'CodeqTaskCompletionSlow', 'CodeqHighFailureRate', 'CodeqLeaseExpirySpiking', 'CodeqNoTasksClaimed', 'CodeqWebhookFailureRate', 'CodeqRateLimitSustained', 'CodeqTargetDown']),
    );
    for (const r of all) {
      expect(r.labels['severity']).toMatch(/^(warning|critical)$/);
      expect(referencedMetrics(r.expr).filter((m) => !metrics.has(m))).toEqual([]);
    }
  });

  it('provisions a Grafana dashboard whose queries use exported metrics', () => {
    const dash = JSON.parse(read(obs, 'grafana', 'dashboards', 'codeq-overview.json')) as { uid: string; panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }> };
    const panels = dash.panels.filter((p) => p.type !== 'row');
    const titles = panels.map((p) => p.title).join(' | ');
    for (const t of [/throughput/i, /queue depth/i, /lease expir/i, /latency/i, /memory/i]) expect(titles).toMatch(t);
    const exprs = panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.join('\n')).toMatch(/histogram_quantile\(0\.99/);
    expect(exprs.flatMap(referencedMetrics).filter((m) => !metrics.has(m))).toEqual([]);
    const provider = parseYaml(read(obs, 'grafana', 'provisioning', 'dashboards', 'codeq.yaml')) as { providers: Array<{ options: { path: string } }> };
    expect(read(obs, 'compose.yaml')).toContain(`./grafana/dashboards:${provider.providers[0]!.options.path}:ro`);
  });
});

describe('Helm chart helm/codeq', () => {
  const valuesText = read(CHART, 'values.yaml');
  const values = parseYaml(valuesText) as Obj & {
    config: Obj;
    persistence: Obj & { postgres: { url: string; poolSize: number; existingSecret: string } };
    auth: { producer: { provider: string; config: Obj }; worker: { provider: string; config: Obj } };
    extraEnvVars: Array<{ name: string }>;
  };
  const templateFiles = readdirSync(join(CHART, 'templates')).filter((f) => /\.(ya?ml|tpl|txt)$/.test(f));
  const templates = Object.fromEntries(templateFiles.map((f) => [f, read(CHART, 'templates', f)]));
  const helpers = templates['_helpers.tpl']!;
  const managedKeys = /define "codeq\.managedConfigKeys" -\}\}\s*\n([^{]*)\{\{/.exec(helpers)?.[1]?.trim().split(/\s+/) ?? [];

  it('has a v2 Chart.yaml', () => {
    const chart = parseYaml(read(CHART, 'Chart.yaml')) as Obj;
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'codeq', type: 'application' });
    expect(chart['version']).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof chart['appVersion']).toBe('string');
    for (const f of ['statefulset.yaml', 'service.yaml', 'configmap.yaml', 'secret.yaml', 'servicemonitor.yaml', 'pdb.yaml', 'NOTES.txt', '_helpers.tpl']) expect(templateFiles).toContain(f);
  });

  it('references only .Values paths that values.yaml defines', () => {
    const missing = new Set<string>();
    for (const [file, text] of Object.entries(templates)) {
      for (const m of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        let node: unknown = values;
        for (const part of m[1]!.slice(1).split('.')) {
          if (!isObj(node) || !(part in node)) {
            missing.add(`${file}: .Values${m[1]}`);
            break;
          }
          node = node[part];
        }
      }
    }
    expect([...missing]).toEqual([]);
  });

  it('documents every value with an @param line that names an existing path', () => {
    const params = [...valuesText.matchAll(/^\s*## @param (\S+)/gm)].map((m) => m[1]!);
    const missing = params.filter((p) => {
      let node: unknown = values;
      for (const part of p.split('.')) {
        if (!isObj(node) || !(part in node)) return true;
        node = node[part];
      }
      return false;
    });
    expect(missing).toEqual([]);
    for (const p of ['replicaCount', 'persistence.provider', 'persistence.postgres.url', 'persistence.postgres.poolSize', 'persistence.postgres.existingSecret', 'persistence.existingClaim', 'podDisruptionBudget.enabled', 'podDisruptionBudget.maxUnavailable']) expect(params).toContain(p);
    expect(valuesText).not.toMatch(/planned/i); // postgres is implemented
  });

  it('sets only environment variables the server reads', () => {
    const names: string[] = [];
    for (const text of Object.values(templates)) {
      for (const m of text.matchAll(/-\s+name:\s+([A-Z][A-Z0-9_]*)\s*$/gm)) names.push(m[1]!);
      for (const m of text.matchAll(/secretKeyRef:\s*\n(?:\s+.*\n)*?\s+key:\s+([A-Z][A-Z0-9_]*)/g)) names.push(m[1]!);
    }
    // The Secret's keys become env variables through secretKeyRef.
    for (const m of templates['secret.yaml']!.matchAll(/^\s+([A-Z][A-Z0-9_]*):/gm)) names.push(m[1]!);
    names.push(...values.extraEnvVars.map((e) => e.name));
    expect(names).toEqual(expect.arrayContaining(['CODEQ_CONFIG_PATH', 'PRODUCER_AUTH_CONFIG', 'WORKER_AUTH_CONFIG', 'WEBHOOK_HMAC_SECRET']));
    expect(unknownEnv(names)).toEqual([]);
  });

  it('renders a config file with known keys only, which the server accepts', () => {
    const block = /codeq\.yaml: \|\n((?: {4}.*\n?)+)/.exec(templates['configmap.yaml']!)?.[1] ?? '';
    const rendered = [...block.matchAll(/^ {4}([A-Za-z][A-Za-z0-9]*):/gm)].map((m) => m[1]!);
    expect(rendered.sort()).toEqual([...managedKeys].sort()); // the chart's own keys, then `config`
    expect(block).toContain('toYaml . | nindent 4'); // .Values.config is appended
    expect(unknownYaml(rendered)).toEqual([]);
    expect(unknownYaml(Object.keys(values.config))).toEqual([]);
    expect(Object.keys(values.config).filter((k) => managedKeys.includes(k))).toEqual([]); // the chart fails on those

    // The default values, rendered the way the template does, pass the server's validation.
    const file = {
      port: 8080,
      persistenceProvider: values.persistence['provider'],
      persistenceConfig: { path: '/var/lib/codeq/pebble', fsyncOnCommit: values.persistence['fsyncOnCommit'] },
      localArtifactsDir: '/var/lib/codeq/artifacts',
      workerStreamAddr: ':9091',
      producerStreamAddr: ':9092',
      producerAuthProvider: values.auth.producer.provider,
      workerAuthProvider: values.auth.worker.provider,
      ...values.config,
    };
    expect(Object.keys(file).sort()).toEqual([...managedKeys, ...Object.keys(values.config)].sort());
    const secretEnv = {
      PRODUCER_AUTH_CONFIG: JSON.stringify({ ...values.auth.producer.config, token: 'generated' }),
      WORKER_AUTH_CONFIG: JSON.stringify({ ...values.auth.worker.config, token: 'generated' }),
      WEBHOOK_HMAC_SECRET: 'generated',
    };
    expect(configProblems(secretEnv, file)).toEqual([]);
    for (const side of [values.auth.producer, values.auth.worker]) {
      if (side.provider === 'static') expect(() => staticValidator({ ...side.config, token: 'generated' })).not.toThrow();
    }

    // With postgres the file has no persistenceConfig (it renders it only for sqlite) and the
    // Secret's PERSISTENCE_CONFIG ({url, poolSize}, see codeq.postgresConfigJson) completes it.
    expect(templates['configmap.yaml']).toMatch(/\{\{- if eq \(include "codeq\.provider" \.\) "sqlite" \}\}\s*\n\s+persistenceConfig:/);
    const { persistenceConfig: _sqliteOnly, ...pgFile } = { ...file, persistenceProvider: 'postgres' };
    const pgEnv = { ...secretEnv, PERSISTENCE_CONFIG: JSON.stringify({ url: 'postgres://codeq:secret@pg:5432/codeq', poolSize: values.persistence.postgres.poolSize }) };
    expect(configProblems(pgEnv, pgFile)).toEqual([]);
  });

  it('clears the image defaults for keys it manages, so its config file decides', () => {
    // Environment variables win over the file: the image's PORT, PERSISTENCE_PROVIDER, ... would
    // silently override the chart's values (e.g. keep sqlite when the chart says postgres).
    const sts = templates['statefulset.yaml']!;
    const managedEnv: string[] = CONFIG_KEYS.filter((k) => managedKeys.includes(k.yaml)).map((k) => k.env);
    const fromImage = Object.keys(imageEnv()).filter((n) => managedEnv.includes(n));
    expect(fromImage).toEqual(expect.arrayContaining(['PERSISTENCE_PROVIDER', 'PERSISTENCE_CONFIG']));
    for (const n of fromImage) expect(sts).toMatch(new RegExp(`- name: ${n}\\s+(value: ""|valueFrom:)`));
    expect(sts).toMatch(/- name: PERSISTENCE_CONFIG\s+valueFrom:\s+secretKeyRef:\s+name: \{\{ include "codeq\.postgresSecretName" \. \}\}\s+key: PERSISTENCE_CONFIG/);

    // The server reads an empty variable as unset: the image's env with the chart's overrides and
    // a postgres config file ends up on postgres.
    const cleared = Object.fromEntries(fromImage.map((n) => [n, '']));
    const dir = mkdtempSync(join(tmpdir(), 'codeq-deploy-'));
    try {
      const path = join(dir, 'codeq.yaml');
      writeFileSync(path, JSON.stringify({ port: 8081, persistenceProvider: 'postgres', localArtifactsDir: '/data/artifacts' }));
      const env = { ...imageEnv(), ...cleared, PERSISTENCE_CONFIG: JSON.stringify({ url: 'postgres://u:p@pg:5432/codeq', poolSize: 7 }) };
      const cfg = loadConfig({ env, file: path });
      expect(cfg.persistence).toEqual({ provider: 'postgres', url: 'postgres://u:p@pg:5432/codeq', poolSize: 7 });
      expect(cfg.port).toBe(8081);
      expect(cfg.localArtifactsDir).toBe('/data/artifacts');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('points CODEQ_CONFIG_PATH at the mounted ConfigMap', () => {
    const path = /define "codeq\.configPath" -\}\}\s*\n\s*(\S+)\s*\n/.exec(helpers)?.[1];
    expect(path).toMatch(/^\/.+\/codeq\.yaml$/);
    const sts = templates['statefulset.yaml']!;
    expect(sts).toMatch(/- name: CODEQ_CONFIG_PATH\s+value: \{\{ include "codeq\.configPath" \. \| quote \}\}/);
    expect(sts).toMatch(/- name: config\s+mountPath: \{\{ dir \(include "codeq\.configPath" \.\) \}\}/);
  });

  it('runs one replica of the embedded engine and refuses more unless postgres', () => {
    expect(values['replicaCount']).toBe(1);
    expect(values.persistence['provider']).toBe('sqlite');
    expect(helpers).toMatch(/if and \(gt \(int \.Values\.replicaCount\) 1\) \(ne \$provider "postgres"\)[^\n]*\n\{\{- fail /);
    expect(templates['statefulset.yaml']).toMatch(/^\{\{- include "codeq\.validateValues" \. \}\}/);
    // $provider is normalised: pebble → sqlite, postgresql → postgres.
    expect(helpers).toMatch(/\$provider := include "codeq\.provider" \./);
    expect(helpers).toMatch(/has \$p \(list "sqlite" "pebble"\) -\}\}sqlite/);
    expect(helpers).toMatch(/has \$p \(list "postgres" "postgresql"\) -\}\}postgres/);
  });

  it('runs N stateless replicas on postgres: PERSISTENCE_CONFIG from a Secret, no claim template, Parallel', () => {
    expect(values.persistence.postgres).toEqual({ url: '', poolSize: 10, existingSecret: '' });
    // The chart's Secret holds PERSISTENCE_CONFIG unless an existing Secret is named.
    const secret = templates['secret.yaml']!;
    expect(secret).toMatch(/\{\{- if and \(eq \(include "codeq\.provider" \.\) "postgres"\) \(not \.Values\.persistence\.postgres\.existingSecret\) \}\}\s*\n\s+PERSISTENCE_CONFIG: \{\{ include "codeq\.postgresConfigJson" \. \| b64enc \| quote \}\}/);
    expect(secret).toMatch(/^\{\{- if include "codeq\.ownSecret" \. \}\}/m);
    expect(helpers).toMatch(/define "codeq\.postgresConfigJson" -\}\}\s*\n\{\{- dict "url" \.Values\.persistence\.postgres\.url "poolSize" \(int \.Values\.persistence\.postgres\.poolSize\) \| toJson -\}\}/);
    expect(helpers).toMatch(/define "codeq\.postgresSecretName" -\}\}\s*\n\{\{- default \(include "codeq\.fullname" \.\) \.Values\.persistence\.postgres\.existingSecret -\}\}/);
    // What that JSON looks like is what the server accepts.
    expect(configProblems({ PERSISTENCE_PROVIDER: 'postgres', PERSISTENCE_CONFIG: JSON.stringify({ poolSize: values.persistence.postgres.poolSize, url: 'postgres://codeq:pw@db:5432/codeq' }) })).toEqual([]);

    const sts = templates['statefulset.yaml']!;
    expect(sts).toMatch(/\$postgres := eq \(include "codeq\.provider" \.\) "postgres"/);
    expect(sts).toMatch(/podManagementPolicy: \{\{ ternary "Parallel" "OrderedReady" \$postgres \}\}/);
    expect(sts).toMatch(/\$dataClaim := ternary "data" "" \(and \(not \$postgres\) /); // no volumeClaimTemplates
    expect(sts).toMatch(/\{\{- if \$dataClaim \}\}\s*\n\s+volumeClaimTemplates:/);
    // The data volume of a postgres pod: existingClaim (shared artifacts) or an emptyDir.
    expect(sts).toMatch(/else if or \$postgres \(not \.Values\.persistence\.enabled\) \}\}\s*\n\s+- name: data\s+emptyDir: \{\}/);
  });

  it('refuses postgres values that cannot work, with messages that say what to set', () => {
    const fails = [...helpers.matchAll(/\{\{- fail (.*) -\}\}/g)].map((m) => m[1]!);
    const failAfter = (condition: RegExp) => new RegExp(`${condition.source}[^\\n]*\\n\\{\\{- fail `).test(helpers);
    expect(failAfter(/if and \(not \$pg\.url\) \(not \$pg\.existingSecret\)/)).toBe(true);
    expect(fails.find((f) => f.includes('needs persistence.postgres.url'))).toMatch(/persistence\.postgres\.existingSecret.*PERSISTENCE_CONFIG/);
    expect(fails.some((f) => /persistence\.postgres\.url must be a postgres:\/\/ or postgresql:\/\/ URL/.test(f))).toBe(true);
    expect(fails.some((f) => /persistence\.postgres\.poolSize must be an integer from 1 to 1000/.test(f))).toBe(true);
    // One claim for several pods: refused with sqlite, allowed (ReadWriteMany, for shared artifacts) with postgres.
    expect(failAfter(/if and \.Values\.persistence\.existingClaim \(gt \(int \.Values\.replicaCount\) 1\) \(ne \$provider "postgres"\)/)).toBe(true);
    expect(fails.some((f) => /must be ReadWriteMany/.test(f))).toBe(true);
  });

  it('has a PodDisruptionBudget for several replicas', () => {
    expect(values['podDisruptionBudget']).toEqual({ enabled: true, maxUnavailable: 1 });
    const pdb = templates['pdb.yaml']!;
    expect(pdb).toMatch(/^\{\{- if and \.Values\.podDisruptionBudget\.enabled \(gt \(int \.Values\.replicaCount\) 1\) \}\}/m);
    expect(pdb).toMatch(/apiVersion: policy\/v1\s+kind: PodDisruptionBudget/);
    expect(pdb).toMatch(/maxUnavailable: \{\{ \.Values\.podDisruptionBudget\.maxUnavailable \}\}/);
    expect(pdb).toMatch(/selector:\s+matchLabels:\s+\{\{- include "codeq\.selectorLabels" \. \| nindent 6 \}\}/);
  });

  it('tells in NOTES which engine runs, how many replicas and the connection budget', () => {
    const notes = templates['NOTES.txt']!;
    expect(notes).toMatch(/poolSize \+ 2 connections/);
    expect(notes).toMatch(/mul \(int \.Values\.replicaCount\) \(add \(int \.Values\.persistence\.postgres\.poolSize\) 2\)/);
    expect(notes).toMatch(/PER POD in an emptyDir/);
    expect(notes).toMatch(/rate limits/);
  });

  it('probes /healthz for liveness and /readyz for readiness, as a non-root user', () => {
    const sts = templates['statefulset.yaml']!;
    expect(sts).toMatch(/livenessProbe:\s+httpGet:\s+path: \/healthz/);
    expect(sts).toMatch(/readinessProbe:\s+httpGet:\s+path: \/readyz/);
    expect(values['podSecurityContext']).toMatchObject({ runAsNonRoot: true });
    expect(values['securityContext']).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false });
    expect((values['podSecurityContext'] as Obj)['runAsUser']).not.toBe(0);
  });

  it('exposes http, grpc-worker and grpc-producer on 8080, 9091 and 9092', () => {
    const svc = templates['service.yaml']!;
    for (const name of ['http', 'grpc-worker', 'grpc-producer']) expect(svc).toContain(`- name: ${name}\n`);
    expect((values['service'] as { ports: Obj }).ports).toEqual({ http: 8080, grpcWorker: 9091, grpcProducer: 9092 });
    expect(values['containerPorts']).toEqual({ http: 8080, grpcWorker: 9091, grpcProducer: 9092 });
  });
});
