#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]
#
# Runs CMD with DATABASE_URL and TEST_DATABASE_URL pointing at a Postgres
# server. When either is already set, that server is used as it is. Otherwise
# a private cluster under .data/pg is created (and PostgreSQL installed with
# apt-get if no server binaries are found), started on 127.0.0.1:$SLOTWATCH_PG_PORT
# (default 55432) if it is not running, and stopped again when the last run
# of this script using it ends, if a run of this script started it (a make
# run and a make test at once share the cluster: the first to end does not
# stop it under the other). A cluster already running is used on its own
# port.
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

durable=${SLOTWATCH_PG_DURABLE:-}
name=pg
[[ -z $durable || $durable == 0 ]] || name=pg-durable
datadir=$root/.data/$name

# Runs of this script take turns (fd 8, $name.lock) to set up, create,
# start or stop the cluster, and each holds a shared lock (fd 9,
# $name.users) while its CMD runs: the last to leave is the one that can
# take that alone. $started holds the server's pid when a run of this
# script started it.
mkdir -p "$root/.data"
started=$root/.data/$name.started
exec 8>>"$root/.data/$name.lock" 9>>"$root/.data/$name.users"
flock -x 8

# initdb and postgres refuse to run as root: run them as the postgres user,
# with a data directory that user can reach.
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
  as_pg=(runuser -u postgres --)
  if ! runuser -u postgres -- test -x "$root/.data"; then
    # The checkout sits under a directory the postgres user cannot enter
    # (a mode-700 home): keep the cluster in /var/tmp, linked from .data.
    outside=/var/tmp/slotwatch-pg-$(printf '%s' "$root" | sha256sum | cut -c1-12)
    if [[ -e $datadir && ! -L $datadir ]]; then
      log "$datadir is a directory the postgres user cannot reach (a parent is not open to it): move it away (a cluster in it is kept in /var/tmp from now on) or open the path to that user"
      exit 1
    fi
    mkdir -p "$outside"
    chown postgres:postgres "$outside"
    [[ -L $datadir ]] || ln -s "$outside/$name" "$datadir"
    datadir=$outside/$name
  fi
fi

pgrun() { "${as_pg[@]}" "$@"; }
# server_pid is the running server's pid (postmaster.pid's first line).
server_pid() { pgrun sed -n 1p "$datadir/postmaster.pid" 2>/dev/null || true; }

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

if ! pgrun "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    log "127.0.0.1:$port is taken by another server: set SLOTWATCH_PG_PORT to a free port, or DATABASE_URL to use that server"
    exit 1
  fi
  log "starting Postgres on 127.0.0.1:$port"
  # 8>&- 9>&-: the server must not hold this run's locks after it ends.
  pgrun "$bindir/pg_ctl" -D "$datadir" -l "$datadir/postgres.log" -w -t 60 -o "-p $port" start >/dev/null 8>&- 9>&-
  server_pid >"$started"
else
  # Running already (another run of this script, or by hand): on its port.
  port=$(pgrun sed -n 4p "$datadir/postmaster.pid")
fi
flock -s 9 # a user now
flock -u 8 # others may come
url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"

stop() {
  # The last user stops a cluster a run of this script started, never one
  # started by hand. Taking turns first: a run that is joining now has
  # either found it running and become a user, or will start it again.
  flock -x 8
  if flock -x -n 9 && [[ -f $started && $(cat "$started") == "$(server_pid)" ]]; then
    log "stopping the Postgres a run of this script started (no other run uses it)"
    pgrun "$bindir/pg_ctl" -D "$datadir" -m fast -w stop >/dev/null || true
    rm -f "$started"
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

export DATABASE_URL=$url TEST_DATABASE_URL=$url
"$@" 8>&- 9>&-
