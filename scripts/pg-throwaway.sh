#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and benchmarks, from the machine's PostgreSQL binaries.
#
#   eval "$(bash scripts/pg-throwaway.sh start)"   # sets PG_THROWAWAY_DIR and CODEQ_TEST_PG_URL
#   bash scripts/pg-throwaway.sh url "$PG_THROWAWAY_DIR"    # prints the URL again
#   bash scripts/pg-throwaway.sh stop "$PG_THROWAWAY_DIR"
#
# start: initdb in a new temp directory, pg_ctl start on a free loopback port (as the `postgres`
# system user when run as root: PostgreSQL refuses to run as root), trust auth for loopback only.
# PG_THROWAWAY_DURABLE=1 keeps PostgreSQL's durable defaults (fsync, full_page_writes) for
# benchmarks; by default tests run with fsync=off (the data is thrown away anyway).
# synchronous_commit is left at its default (on) either way.
set -euo pipefail

find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
  return 1
}

cmd="${1:-}"
case "$cmd" in
  start)
    bin="$(find_bin || true)"
    if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "pg-throwaway: no PostgreSQL binaries; installing Debian's postgresql package" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
      bin="$(find_bin || true)"
    fi
    if [ -z "$bin" ]; then
      echo "pg-throwaway: PostgreSQL server binaries (initdb, pg_ctl) not found; install PostgreSQL (Debian: apt-get install postgresql)" >&2
      exit 1
    fi
    dir="$(mktemp -d /tmp/codeq-pg-XXXXXX)"
    run=()
    user="$(id -un)"
    if [ "$(id -u)" = 0 ]; then
      id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
      chown postgres "$dir"
      run=(runuser -u postgres --)
      user=postgres
    fi
    port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
    "${run[@]}" "$bin/initdb" -D "$dir/data" -A trust -U "$user" -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=128MB"
    if [ "${PG_THROWAWAY_DURABLE:-0}" != 1 ]; then opts="$opts -c fsync=off -c full_page_writes=off"; fi
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -o "$opts" -l "$dir/server.log" -w -t 60 start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "export PG_THROWAWAY_DIR=$dir"
    echo "export CODEQ_TEST_PG_URL=postgres://$user@127.0.0.1:$port/postgres"
    echo "pg-throwaway: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data $dir)" >&2
    ;;
  url)
    dir="${2:-}"
    if [ -z "$dir" ] || [ ! -f "$dir/port" ]; then echo "pg-throwaway: url needs the directory printed by start" >&2; exit 64; fi
    echo "postgres://$(stat -c %U "$dir/data")@127.0.0.1:$(cat "$dir/port")/postgres"
    ;;
  stop)
    dir="${2:-}"
    if [ -z "$dir" ] || [ ! -d "$dir/data" ]; then echo "pg-throwaway: stop needs the directory printed by start" >&2; exit 64; fi
    bin="$(find_bin)"
    run=()
    [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg-throwaway.sh start | url <dir> | stop <dir>" >&2
    exit 64
    ;;
esac
