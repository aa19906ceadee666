#!/usr/bin/env bash
# The one test command (README quick start, .ci/run): install, build, run every package's tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
bash scripts/pnpm.sh install --frozen-lockfile
# The dashboard's end-to-end tests drive Debian's headless Chromium (apps/dashboard/README.md).
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] && command -v apt-get >/dev/null; then
  echo "installing chromium for the dashboard's browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
bash scripts/pnpm.sh exec turbo run build --output-logs=errors-only
# ESLint over every package's sources and tests, then the import-cycle check (madge, pinned).
bash scripts/pnpm.sh run lint
# The .proto files: buf lint, and the committed src/gen/ must be what the generator makes of them.
bash scripts/pnpm.sh --filter @codeq/proto run lint
bash scripts/pnpm.sh --filter @codeq/proto run gen:check
bash scripts/pnpm.sh exec turbo run test --concurrency=1 --output-logs=full

# The server's HTTP and gRPC integration suites again, on PostgreSQL (a throwaway server from the
# machine's PostgreSQL binaries; the replica and PostgreSQL contract tests only run in this pass).
if [ -n "${CODEQ_TEST_PG_URL:-}" ]; then
  echo "PostgreSQL pass on the given CODEQ_TEST_PG_URL"
else
  eval "$(bash scripts/pg-throwaway.sh start)"
  trap 'bash scripts/pg-throwaway.sh stop "$PG_THROWAWAY_DIR"' EXIT
fi
(cd apps/server && CODEQ_TEST_PG_URL="$CODEQ_TEST_PG_URL" NODE_OPTIONS=--experimental-vm-modules ../../node_modules/.bin/jest --selectProjects integration)
