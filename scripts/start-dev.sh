#!/usr/bin/env bash
# Quick start: install, build and run the server on the embedded engine with development tokens
# (the seed page's codeq.env values). Data lives in ./data and survives restarts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
bash scripts/pnpm.sh install --frozen-lockfile
bash scripts/pnpm.sh exec turbo run build --filter=@codeq/server... --filter=@codeq/cli... --output-logs=errors-only
export PORT="${PORT:-8080}"
export LOG_LEVEL="${LOG_LEVEL:-info}"
export LOG_FORMAT="${LOG_FORMAT:-text}"
export PERSISTENCE_PROVIDER="${PERSISTENCE_PROVIDER:-sqlite}"
export PERSISTENCE_CONFIG="${PERSISTENCE_CONFIG:-{\"path\":\"./data\",\"fsyncOnCommit\":false\}}"
export PRODUCER_AUTH_PROVIDER="${PRODUCER_AUTH_PROVIDER:-static}"
export PRODUCER_AUTH_CONFIG="${PRODUCER_AUTH_CONFIG:-{\"token\":\"dev-token\",\"subject\":\"producer-dev\",\"raw\":{\"role\":\"ADMIN\",\"tid\":\"dev-tenant\"\}\}}"
export WORKER_AUTH_PROVIDER="${WORKER_AUTH_PROVIDER:-static}"
export WORKER_AUTH_CONFIG="${WORKER_AUTH_CONFIG:-{\"token\":\"dev-token\",\"subject\":\"worker-dev\",\"scopes\":[\"codeq:claim\",\"codeq:heartbeat\",\"codeq:abandon\",\"codeq:nack\",\"codeq:result\",\"codeq:subscribe\"],\"eventTypes\":[\"*\"],\"raw\":{\"tid\":\"dev-tenant\"\}\}}"
export WORKER_STREAM_ADDR="${WORKER_STREAM_ADDR-:9091}"
export PRODUCER_STREAM_ADDR="${PRODUCER_STREAM_ADDR-:9092}"
echo "codeQ dev server on http://localhost:$PORT (token: dev-token, tenant: dev-tenant, data: ./data); dashboard: http://localhost:$PORT/ui" >&2
exec node apps/server/dist/main.js
