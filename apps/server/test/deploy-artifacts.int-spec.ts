/**
 * Deployment artefacts against the server's configuration surface: the Dockerfile, the compose
 * files (with their env files), the Prometheus/Grafana files and the Helm chart. There is no helm
 * or docker binary in CI, so this reads the files: every env variable and config-file key they set
 * must be one the server accepts (keys.ts), every `.Values.x` a template uses must exist in
 * values.yaml, and every metric an alert or panel queries must be one the server exports.
 * No network, no docker, no server process.
 */
import 'reflect-metadata';
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/config/config.js';
import { ENV_VARS, YAML_KEYS } from '../src/config/keys.js';
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

describe('Dockerfile', () => {
  const text = read(ROOT, 'Dockerfile');
  // Join continuation lines; drop comments.
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
  const runtime = stages.at(-1) ?? [];
  const envOf = (stage: string[]) => {
    const env: Record<string, string> = {};
    for (const ins of stage.filter((i) => /^ENV\s/i.test(i))) {
      for (const m of ins.slice(4).matchAll(/([A-Za-z_][A-Za-z0-9_]*)=('([^']*)'|"((?:[^"\\]|\\.)*)"|(\S*))/g)) {
        env[m[1]!] = m[3] ?? m[4]?.replace(/\\(.)/g, '$1') ?? m[5] ?? '';
      }
    }
    return env;
  };

  it('is multi-stage, both stages on the same Node image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const froms = stages.map((s) => s[0]!.split(/\s+/)[1]);
    expect(new Set(froms).size).toBe(1); // better-sqlite3's binary is built for that Node ABI
    expect(text).toMatch(/ARG NODE_IMAGE=node:(22|24)-bookworm-slim/);
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

describe('docker compose files', () => {
  const files = readdirSync(COMPOSE, { recursive: true, encoding: 'utf8' })
    .filter((f) => /(^|\/)compose\.ya?ml$/.test(f))
    .map((f) => join(COMPOSE, f));

  it('include the single-node and the observability stacks', () => {
    expect(files.map(rel).sort()).toEqual(['deploy/docker-compose/observability/compose.yaml', 'deploy/docker-compose/single-node/compose.yaml']);
  });

  describe.each(files.map((f) => [rel(f), f] as const))('%s', (_name, file) => {
    const doc = parseYaml(read(file)) as { services: Record<string, Obj>; volumes?: Obj };
    const codeq = Object.entries(doc.services).filter(([, s]) => typeof s['image'] === 'string' && s['image'].includes('codeq-server'));

    it('runs codeQ with env variables the server reads and a config it accepts', () => {
      expect(codeq.length).toBeGreaterThan(0);
      for (const [name, svc] of codeq) {
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
        expect(unknownEnv(Object.keys(env))).toEqual([]);
        expect(configProblems(env)).toEqual([]);

        // Durability: the data directory is a named volume.
        const dataPath = (JSON.parse(env['PERSISTENCE_CONFIG'] ?? '{}') as { path?: string }).path;
        expect(dataPath).toBeDefined();
        const mounts = ((svc['volumes'] ?? []) as string[]).map((v) => v.split(':'));
        const dataMount = mounts.find(([, target]) => target === dataPath);
        expect(dataMount).toBeDefined();
        expect(Object.keys(doc.volumes ?? {})).toContain(dataMount![0]);

        const published = ((svc['ports'] ?? []) as string[]).map((p) => String(p).split(':').at(-1));
        expect(published).toEqual(expect.arrayContaining(['8080', '9091', '9092']));
      }
    });
  });

  it('uses the seed page values in single-node/codeq.env', () => {
    const env = parseEnvFile(read(COMPOSE, 'single-node', 'codeq.env'));
    expect(env).toMatchObject({ PORT: '8080', PERSISTENCE_PROVIDER: 'pebble', PRODUCER_AUTH_PROVIDER: 'static', WORKER_AUTH_PROVIDER: 'static', WORKER_STREAM_ADDR: ':9091', PRODUCER_STREAM_ADDR: ':9092' });
    expect(JSON.parse(env['PERSISTENCE_CONFIG']!)).toEqual({ path: '/var/lib/codeq/pebble' });
    expect(JSON.parse(env['PRODUCER_AUTH_CONFIG']!)).toMatchObject({ token: 'dev-token', raw: { role: 'ADMIN', tenantId: 'dev-tenant' } });
    expect(JSON.parse(env['WORKER_AUTH_CONFIG']!)).toMatchObject({ token: 'dev-token', raw: { tenantId: 'dev-tenant' } });
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
  const values = parseYaml(read(CHART, 'values.yaml')) as Obj & {
    config: Obj;
    persistence: Obj;
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
    for (const f of ['statefulset.yaml', 'service.yaml', 'configmap.yaml', 'secret.yaml', 'servicemonitor.yaml', 'NOTES.txt', '_helpers.tpl']) expect(templateFiles).toContain(f);
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
