#!/usr/bin/env bash
# The seed page's walkthrough against a running server ("Run In Docker"): create a task, claim it,
# post its result, and read it back; the last line printed is "COMPLETED" (with the quotes, as
# `jq '.status'` prints it). Uses curl, and node instead of jq to read JSON (jq may be absent).
#
# Usage: scripts/seed-walkthrough.sh [baseUrl]      (default http://localhost:8080)
# Env:   CODEQ_TOKEN            bearer token for every call (default dev-token, the seed's)
#        CODEQ_PRODUCER_TOKEN   token for create and get, when producers and workers differ
#        CODEQ_WORKER_TOKEN     token for claim and result (e.g. the Helm chart's two tokens)
#
# Output (stdout): line 1 is the new task id, then the claim and result responses, then the
# status. Exits non-zero, naming the failed step, on any unexpected answer.
set -euo pipefail

base="${1:-http://localhost:8080}"
base="${base%/}"
token="${CODEQ_TOKEN:-dev-token}"
PRODUCER="Authorization: Bearer ${CODEQ_PRODUCER_TOKEN:-$token}"
WORKER="Authorization: Bearer ${CODEQ_WORKER_TOKEN:-$token}"
JSON='Content-Type: application/json'

die() { echo "seed-walkthrough: $*" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || die "curl is required"
command -v node >/dev/null 2>&1 || die "node is required (it reads the JSON answers)"

body_file="$(mktemp "${TMPDIR:-/tmp}/codeq-seed.XXXXXX")"
trap 'rm -f "$body_file"' EXIT

# call AUTH-HEADER METHOD PATH [DATA] → sets STATUS, BODY
call() {
  local auth="$1" method="$2" path="$3" data="${4-}"
  local args=(-sS -o "$body_file" -w '%{http_code}' --max-time 30 -X "$method" -H "$auth")
  [ -n "$data" ] && args+=(-H "$JSON" --data-binary "$data")
  STATUS="$(curl "${args[@]}" "$base$path")" || die "$method $path: cannot reach $base"
  BODY="$(cat "$body_file")"
}

# field NAME: prints a top-level field of BODY (JSON-encoded when not a string)
field() {
  BODY="$BODY" node -e '
    let o; try { o = JSON.parse(process.env.BODY); } catch { process.exit(3); }
    const v = o?.[process.argv[1]];
    if (v === undefined || v === null) process.exit(4);
    process.stdout.write(typeof v === "string" ? v : JSON.stringify(v));
  ' "$1"
}

expect() { # expect STEP CODE...
  local step="$1"; shift
  for code in "$@"; do [ "$STATUS" = "$code" ] && return 0; done
  die "$step: expected HTTP $*, got $STATUS: $BODY"
}

call "$PRODUCER" POST /v1/codeq/tasks '{"command":"PROCESS_ORDER","payload":{"orderId":"42"},"priority":5}'
expect "create task" 200 201 202
TASK_ID="$(field id)" || die "create task: no id in $BODY"
echo "$TASK_ID"

call "$WORKER" POST /v1/codeq/tasks/claim '{"commands":["PROCESS_ORDER"],"leaseSeconds":60,"waitSeconds":5}'
expect "claim" 200
claimed="$(field id)" || die "claim: no id in $BODY"
[ "$claimed" = "$TASK_ID" ] || die "claim: got task $claimed, expected $TASK_ID (is the queue shared with other work?)"
echo "$BODY"

call "$WORKER" POST "/v1/codeq/tasks/${TASK_ID}/result" '{"status":"COMPLETED","result":{"ok":true}}'
expect "submit result" 200
echo "$BODY"

call "$PRODUCER" GET "/v1/codeq/tasks/${TASK_ID}"
expect "get task" 200
status="$(field status)" || die "get task: no status in $BODY"
echo "\"$status\""
[ "$status" = "COMPLETED" ] || die "get task: status is $status, expected COMPLETED"
