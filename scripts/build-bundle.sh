#!/usr/bin/env bash
# Builds the production bundle of the server into <outdir>: what the Docker image ships and what
# scripts/bundle-smoke.sh runs. The bundle is self-contained and starts with
#   node <outdir>/dist/main.js
# It holds the server's dist/, its package.json and production node_modules only (the workspace
# package @codeq/proto is copied in with its dist/, better-sqlite3 with its compiled binary for the
# Node version that ran this script; run the bundle with the same Node major).
#
# Usage: scripts/build-bundle.sh <outdir>
# Needs: the workspace dependencies installed (`pnpm install --frozen-lockfile`); this script does
# not install them. better-sqlite3 must have been built by that install (pnpm-workspace.yaml
# allowBuilds); pnpm's side-effects cache lets `pnpm deploy` reuse that binary instead of compiling
# it again (if the cache misses, pnpm compiles it: python3, make and g++ are then needed).
#
# `pnpm deploy` on pnpm >= 12.2 works without inject-workspace-packages and without --legacy: the
# workspace dependency @codeq/proto is rewritten to a file: dependency in a dedicated lockfile
# (<outdir>/pnpm-lock.yaml) and installed as a real copy, not a symlink into the repository.
set -euo pipefail

die() { echo "build-bundle: $*" >&2; exit 1; }

if [ $# -ne 1 ] || [ -z "$1" ]; then die "usage: scripts/build-bundle.sh <outdir>"; fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pnpm=(bash "$root/scripts/pnpm.sh")

out="$1"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
out="${out%/}"
if [ -z "$out" ] || [ "$out" = "$root" ] || [ "$out" = "$HOME" ]; then die "refusing to use $1 as the output directory"; fi
case "$root/" in "$out"/*) die "the output directory must not contain the repository: $out" ;; esac
if [ -e "$out" ]; then
  # Only replace an empty directory or an earlier bundle, never anything else.
  if [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
    grep -q '"name": *"@codeq/server"' "$out/package.json" 2>/dev/null ||
      die "$out exists and is not an earlier bundle; remove it or pick another directory"
  fi
  rm -rf "$out"
fi
[ -d "$root/node_modules" ] || die "workspace dependencies are not installed: run 'bash scripts/pnpm.sh install --frozen-lockfile' first"

export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
cd "$root"
started=$SECONDS

echo "build-bundle: building @codeq/server and its workspace dependencies" >&2
"${pnpm[@]}" --filter "@codeq/server..." run build

echo "build-bundle: deploying production dependencies into $out" >&2
"${pnpm[@]}" --filter "@codeq/server" deploy --prod "$out"

# Drop what is only needed to build or test (the package has no "files" list, so deploy copies the
# whole package directory), and better-sqlite3's compiler intermediates and sources.
rm -rf "$out/src" "$out/test" "$out/.turbo" "$out/coverage" "$out"/jest.config.* "$out"/tsconfig*.json \
  "$out"/eslint.config.* "$out"/*.tsbuildinfo
find "$out/dist" \( -name '*.d.ts' -o -name '*.d.ts.map' -o -name '*.tsbuildinfo' \) -type f -delete
for pkg in "$out"/node_modules/.pnpm/better-sqlite3@*/node_modules/better-sqlite3; do
  [ -d "$pkg" ] || continue
  rm -rf "$pkg/deps" "$pkg/src" "$pkg/build/deps" "$pkg/build/Release/obj" "$pkg/build/Release/obj.target" \
    "$pkg/build/Release/.deps" "$pkg/build/Release/sqlite3.a" "$pkg/build/Release/test_extension.node"
done

# Files that nothing loads at run time, in the production dependencies: source maps, type
# declarations, TypeScript sources and Markdown (about 30 MB; keeps the image small). Licences stay.
find "$out/node_modules" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \
  -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.md' -o -name '*.markdown' \) -delete

# Readable by any user: the image runs the bundle as uid 1000 from root-owned files.
find "$out" -type f ! -perm -o=r -exec chmod a+r {} +
find "$out" -type d ! -perm -o=rx -exec chmod a+rx {} +

# Check the bundle: entry point, workspace package, native binary, no devDependencies.
[ -f "$out/dist/main.js" ] || die "bundle has no dist/main.js"
[ -f "$out/node_modules/@codeq/proto/package.json" ] || die "bundle lacks @codeq/proto"
[ ! -L "$out/node_modules/@codeq/proto" ] || case "$(readlink -f "$out/node_modules/@codeq/proto")" in
  "$out"/*) ;; *) die "@codeq/proto is a link out of the bundle ($(readlink -f "$out/node_modules/@codeq/proto"))" ;;
esac
[ -d "$out/node_modules/@codeq/proto/dist" ] || die "bundle's @codeq/proto has no dist/ (was it built?)"
# The web dashboard (/ui): the built @codeq/dashboard package, static files only.
[ -f "$out/node_modules/@codeq/dashboard/dist/index.html" ] || die "bundle lacks the dashboard (@codeq/dashboard/dist/index.html)"
node - "$out" <<'EOF' || die "bundle check failed"
const { createRequire } = require('node:module');
const { join } = require('node:path');
const { existsSync, readFileSync, realpathSync } = require('node:fs');
const out = process.argv[2];
const req = createRequire(join(out, 'package.json'));
const Database = req('better-sqlite3');
const db = new Database(':memory:');
const { v } = db.prepare('select sqlite_version() as v').get();
db.close();
const pkg = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8'));
const dev = Object.keys(pkg.devDependencies ?? {}).filter((d) => existsSync(join(out, 'node_modules', d)));
if (dev.length) { console.error(`devDependencies in the bundle: ${dev.join(', ')}`); process.exit(1); }
const proto = realpathSync(req.resolve('@codeq/proto/package.json'));
if (!proto.startsWith(out)) { console.error(`@codeq/proto resolves outside the bundle: ${proto}`); process.exit(1); }
console.error(`build-bundle: better-sqlite3 loads (SQLite ${v}, Node ${process.version} ABI ${process.versions.modules})`);
EOF

echo "build-bundle: done in $((SECONDS - started))s: $out ($(du -sh "$out" | cut -f1)); start with: node $out/dist/main.js" >&2
