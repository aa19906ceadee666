#!/usr/bin/env bash
# Smoke test of the production bundle (what the Docker image runs), run by CI after the tests:
#   1. scripts/build-bundle.sh into a temp dir (production node_modules only);
#   2. start the server FROM THE BUNDLE with the seed page's codeq.env values, a temp data dir and
#      free loopback ports;
#   3. scripts/seed-walkthrough.sh: create → claim → result → GET prints "COMPLETED";
#   4. SIGTERM, start again on the same data dir: the task is still COMPLETED (durability);
#   5. /healthz, /readyz and /metrics answer; SIGTERM exits 0; clean up.
# Everything listens on and talks to 127.0.0.1 only. Exits non-zero with a message on failure.
# Env: CODEQ_SMOKE_KEEP=1 keeps the temp dir (bundle, data, logs); it is also kept after a failure
# outside CI.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
started=$SECONDS
work="$(mktemp -d "${TMPDIR:-/tmp}/codeq-bundle-smoke.XXXXXX")"
bundle="$work/bundle"
data="$work/data"
log="$work/server.log"
pid=""
run=0

say() { echo "bundle-smoke: $*" >&2; }
stop_server() { # stop_server [expected-exit-code]: SIGTERM the server this script started, wait for it
  [ -n "$pid" ] || return 0
  local p="$pid" code=0 i
  pid=""
  kill -TERM "$p" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    fail "server (pid $p) did not exit within 20s of SIGTERM"
  fi
  wait "$p" 2>/dev/null || code=$?
  if [ -n "${1-}" ] && [ "$code" != "$1" ]; then fail "server exited with code $code after SIGTERM (expected $1)"; fi
  return 0
}
cleanup() {
  local rc=$?
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  # Keep the temp dir when asked, or after a local failure (not in CI) for inspection.
  if [ "${CODEQ_SMOKE_KEEP:-}" = 1 ] || { [ $rc -ne 0 ] && [ "${CI:-}" != true ]; }; then
    say "kept $work (bundle, data, server.log)"
  else
    rm -rf "$work"
  fi
  if [ $rc -eq 0 ]; then say "OK in $((SECONDS - started))s"; else say "FAILED (exit $rc)"; fi
}
trap cleanup EXIT
fail() {
  say "FAIL: $*"
  if [ -s "$log" ]; then
    echo "----- last 40 lines of the server log ($log) -----" >&2
    tail -n 40 "$log" >&2
    echo "-----" >&2
  fi
  exit 1
}

for tool in curl node; do command -v "$tool" >/dev/null 2>&1 || fail "$tool is required"; done
# Loopback only, whatever proxy the environment sets.
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"

# free_ports N: N distinct free loopback ports (all held open together, then released)
free_ports() {
  node -e '
    const net = require("net");
    const servers = Array.from({ length: +process.argv[1] }, () => net.createServer());
    Promise.all(servers.map((s) => new Promise((ok) => s.listen(0, "127.0.0.1", ok)))).then(() => {
      process.stdout.write(servers.map((s) => s.address().port).join(" "));
      servers.forEach((s) => s.close());
    });' "$1"
}

say "building the bundle into $bundle"
bash "$root/scripts/build-bundle.sh" "$bundle" || fail "scripts/build-bundle.sh failed"
# The bundle must not be able to borrow packages from an enclosing node_modules (e.g. the repo's).
d="$(dirname "$bundle")"
while [ "$d" != / ]; do
  [ ! -d "$d/node_modules" ] || fail "$d/node_modules exists above the bundle; set TMPDIR to a directory outside any Node project"
  d="$(dirname "$d")"
done

read -r port worker_port producer_port <<<"$(free_ports 3)"
[ -n "$producer_port" ] || fail "could not find free loopback ports"
base="http://127.0.0.1:$port"
mkdir -p "$data" "$work/artifacts"

# The seed page's codeq.env (spec: Run In Docker), with the temp data dir and loopback ports.
cat >"$work/codeq.env" <<EOF
PORT=$port
HOST=127.0.0.1
LOG_LEVEL=info
LOG_FORMAT=json
PERSISTENCE_PROVIDER=pebble
PERSISTENCE_CONFIG={"path":"$data/pebble","fsyncOnCommit":false}
PRODUCER_AUTH_PROVIDER=static
PRODUCER_AUTH_CONFIG={"token":"dev-token","subject":"producer-dev","raw":{"role":"ADMIN","tenantId":"dev-tenant"}}
WORKER_AUTH_PROVIDER=static
WORKER_AUTH_CONFIG={"token":"dev-token","subject":"worker-dev","scopes":["codeq:claim","codeq:heartbeat","codeq:abandon","codeq:nack","codeq:result","codeq:subscribe"],"eventTypes":["*"],"raw":{"tenantId":"dev-tenant"}}
WORKER_STREAM_ADDR=127.0.0.1:$worker_port
PRODUCER_STREAM_ADDR=127.0.0.1:$producer_port
LOCAL_ARTIFACTS_DIR=$work/artifacts
EOF
# Read the file the way `docker run --env-file` does: NAME=VALUE taken literally (no shell quoting).
env_args=()
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in '' | '#'*) continue ;; esac
  env_args+=("$line")
done <"$work/codeq.env"

start_server() {
  run=$((run + 1))
  echo "===== start #$run =====" >>"$log"
  # A clean environment (only PATH and HOME) so nothing leaks in from the caller; cwd is the temp
  # dir so relative paths cannot reach the repository.
  (cd "$work" && exec env -i PATH="$PATH" HOME="$work" "${env_args[@]}" node "$bundle/dist/main.js") >>"$log" 2>&1 &
  pid=$!
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || { local p=$pid; pid=""; wait "$p" || true; fail "server exited during start-up (start #$run)"; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/readyz" || true)" = 200 ] && return 0
    sleep 0.1
  done
  fail "server not ready on $base/readyz within 30s (start #$run)"
}

# get PATH → prints "<status> <body>"
http_get() { curl -sS --max-time 10 -w '\n%{http_code}' "$base$1" -H 'Authorization: Bearer dev-token' || echo "
000"; }
expect_status() { # expect_status PATH CODE
  local out code
  out="$(http_get "$1")"
  code="${out##*$'\n'}"
  [ "$code" = "$2" ] || fail "GET $1: expected $2, got $code: ${out%$'\n'*}"
}

say "starting the server from the bundle on $base (data: $data)"
start_server
say "seed walkthrough"
# The seed's dev-token, whatever CODEQ_*TOKEN the caller's shell has (the CLI reads CODEQ_TOKEN too).
walk="$(CODEQ_TOKEN=dev-token CODEQ_PRODUCER_TOKEN='' CODEQ_WORKER_TOKEN='' bash "$root/scripts/seed-walkthrough.sh" "$base")" ||
  fail "seed walkthrough failed"
printf '%s\n' "$walk" | sed 's/^/  | /' >&2
task_id="$(printf '%s\n' "$walk" | head -n 1)"
[ "$(printf '%s\n' "$walk" | tail -n 1)" = '"COMPLETED"' ] || fail "walkthrough did not end with \"COMPLETED\""
[ -n "$task_id" ] || fail "walkthrough printed no task id"

metrics="$(curl -sS --max-time 10 "$base/metrics")" || fail "GET /metrics failed"
for m in 'codeq_task_created_total{command="PROCESS_ORDER"} 1' 'codeq_task_claimed_total{command="PROCESS_ORDER"} 1' \
  'codeq_task_completed_total{command="PROCESS_ORDER",status="COMPLETED"} 1'; do
  grep -qF "$m" <<<"$metrics" || fail "/metrics lacks: $m"
done

say "restarting on the same data dir (SIGTERM, then start again)"
stop_server 0
[ -f "$data/pebble/codeq.db" ] || fail "no codeq.db in the data dir $data/pebble"
start_server
got="$(http_get "/v1/codeq/tasks/$task_id")"
code="${got##*$'\n'}"
body="${got%$'\n'*}"
[ "$code" = 200 ] || fail "GET task $task_id after restart: HTTP $code: $body"
status="$(BODY="$body" node -e 'process.stdout.write(String(JSON.parse(process.env.BODY).status))')" ||
  fail "GET task after restart: not JSON: $body"
[ "$status" = COMPLETED ] || fail "task $task_id is $status after restart, expected COMPLETED"
say "task $task_id is still COMPLETED after the restart"

expect_status /healthz 200
expect_status /readyz 200
expect_status /ui/ 200 # the web dashboard ships in the bundle
metrics="$(curl -sS --max-time 10 "$base/metrics")" || fail "GET /metrics failed"
for m in codeq_task_created_total codeq_task_claimed_total codeq_task_completed_total \
  codeq_task_processing_latency_seconds codeq_lease_expired_total codeq_queue_depth codeq_dlq_depth \
  process_resident_memory_bytes nodejs_heap_size_used_bytes; do
  grep -q "^# TYPE $m " <<<"$metrics" || fail "/metrics has no $m"
done
for p in "$worker_port" "$producer_port"; do # informational until the gRPC streams land
  if node -e 'const s=require("net").connect(+process.argv[1],"127.0.0.1",()=>process.exit(0));s.on("error",()=>process.exit(1))' "$p"; then
    say "gRPC stream port 127.0.0.1:$p is listening"
  else
    say "note: nothing listens on the gRPC stream port 127.0.0.1:$p (streams not served by this build)"
  fi
done

say "stopping (SIGTERM)"
stop_server 0
