#!/usr/bin/env bash
# The one test command (README quick start, .ci/run): install, build, run every package's tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
bash scripts/pnpm.sh install --frozen-lockfile
bash scripts/pnpm.sh exec turbo run build --output-logs=errors-only
bash scripts/pnpm.sh run lint
bash scripts/pnpm.sh exec turbo run test --concurrency=1 --output-logs=full
