#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]
#
# Runs CMD with DATABASE_URL and TEST_DATABASE_URL pointing at a Postgres
# server. When either is already set, that server is used as it is. Otherwise
# a private cluster under .data/pg is created (and PostgreSQL installed with
# apt-get if no server binaries are found), started on 127.0.0.1:$SLOTWATCH_PG_PORT
# (default 55432) if it is not running, and stopped again when CMD ends, but
# only if this script started it.
#
# SLOTWATCH_PG_DURABLE=1 uses another cluster, .data/pg-durable, with
# Postgres's durable defaults (fsync, synchronous_commit and
# full_page_writes on), for benchmarks that must pay for commits as
# production does (docs/BENCHMARKS.md); give it its own SLOTWATCH_PG_PORT
# when the usual cluster runs. It refuses a DATABASE_URL or TEST_DATABASE_URL
# already set: that server's settings are not this script's to choose.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
port=${SLOTWATCH_PG_PORT:-55432}

if [[ -n "${TEST_DATABASE_URL:-}" || -n "${DATABASE_URL:-}" ]]; then
  if [[ -n "${SLOTWATCH_PG_DURABLE:-}" ]]; then
    printf 'with-postgres: SLOTWATCH_PG_DURABLE=1 starts its own durable cluster, but DATABASE_URL or TEST_DATABASE_URL names a server already: unset them (env -u DATABASE_URL -u TEST_DATABASE_URL ...)\n' >&2
    exit 2
  fi
  export TEST_DATABASE_URL=${TEST_DATABASE_URL:-$DATABASE_URL}
  export DATABASE_URL=${DATABASE_URL:-$TEST_DATABASE_URL}
  exec "$@"
fi

log() { printf 'with-postgres: %s\n' "$*" >&2; }

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
    if [[ -x $d/initdb && -x $d/pg_ctl ]]; then printf '%s\n' "$d"; return 0; fi
  done
  return 1
}

bindir=$(find_bindir) || {
  log "no PostgreSQL server binaries found; installing the postgresql package"
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  bindir=$(find_bindir) || { log "postgresql installed, but no initdb found under /usr/lib/postgresql"; exit 1; }
}

# initdb and postgres refuse to run as root: run them as the postgres user,
# with a data directory that user can reach.
as_pg=()
durable=${SLOTWATCH_PG_DURABLE:-}
name=pg
[[ -z $durable || $durable == 0 ]] || name=pg-durable
datadir=$root/.data/$name
if [[ $(id -u) -eq 0 ]]; then
  as_pg=(runuser -u postgres --)
  mkdir -p "$root/.data"
  if ! runuser -u postgres -- test -x "$root/.data"; then
    # The checkout sits under a directory the postgres user cannot enter
    # (a mode-700 home): keep the cluster in /var/tmp, linked from .data.
    outside=/var/tmp/slotwatch-pg-$(printf '%s' "$root" | sha256sum | cut -c1-12)
    mkdir -p "$outside"
    chown postgres:postgres "$outside"
    [[ -L $datadir ]] || { rm -rf "$datadir"; ln -s "$outside/$name" "$datadir"; }
    datadir=$outside/$name
  fi
fi

pgrun() { "${as_pg[@]}" "$@"; }

if [[ ! -f $datadir/PG_VERSION ]]; then
  log "creating a private cluster in $datadir"
  mkdir -p "$datadir"
  [[ $(id -u) -ne 0 ]] || chown postgres:postgres "$datadir"
  chmod 700 "$datadir"
  pgrun "$bindir/initdb" -D "$datadir" -U postgres -A trust -E UTF8 --no-sync >/dev/null
  # A throwaway cluster for development and tests: only loopback TCP is
  # used, and durability is traded for speed unless SLOTWATCH_PG_DURABLE.
  cat <<CONF | pgrun tee -a "$datadir/postgresql.conf" >/dev/null
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
CONF
  if [[ $name == pg ]]; then
    printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n' | pgrun tee -a "$datadir/postgresql.conf" >/dev/null
  fi
fi

url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
started=0
if ! pgrun "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    log "127.0.0.1:$port is taken by another server: set SLOTWATCH_PG_PORT to a free port, or DATABASE_URL to use that server"
    exit 1
  fi
  log "starting Postgres on 127.0.0.1:$port"
  pgrun "$bindir/pg_ctl" -D "$datadir" -l "$datadir/postgres.log" -w -t 60 -o "-p $port" start >/dev/null
  started=1
fi

stop() {
  if [[ $started -eq 1 ]]; then
    log "stopping the Postgres it started"
    pgrun "$bindir/pg_ctl" -D "$datadir" -m fast -w stop >/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

export DATABASE_URL=$url TEST_DATABASE_URL=$url
"$@"
