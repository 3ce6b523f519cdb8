#!/usr/bin/env bash
# run.sh: what `make run` starts, under with-postgres.sh (DATABASE_URL is set).
# For now: AccountPool on the private Postgres, with a keyset made for it
# under .data/, listening on 127.0.0.1 for grpcurl. Ctrl-C stops it (and
# with-postgres.sh then stops the Postgres it started).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
data=$root/.data
mkdir -p "$data"

if [[ ! -s $data/keyset.json ]]; then
  (umask 077; bin/accountpool keyset generate > "$data/keyset.json")
  echo "run: made a dev encryption keyset in .data/keyset.json"
fi

export ENCRYPTION_KEYSET_FILE=$data/keyset.json
export LISTEN_ADDR=${LISTEN_ADDR:-127.0.0.1:50051}
export METRICS_ADDR=${METRICS_ADDR:-127.0.0.1:9091}
export LOG_LEVEL=${LOG_LEVEL:-info}

cat <<MSG
run: AccountPool on $LISTEN_ADDR (metrics on http://$METRICS_ADDR/metrics). Try, in another terminal:

  bin/tools/grpcurl -plaintext $LISTEN_ADDR list
  bin/tools/grpcurl -plaintext -d '{"email":"acc1@example.com","password":"change-me","phone":"+33123456789"}' \\
      $LISTEN_ADDR slotwatch.accountpool.v1.AccountPoolService/CreateAccount
  bin/tools/grpcurl -plaintext -d '{"mission_code":"fra","holder":"me"}' \\
      $LISTEN_ADDR slotwatch.accountpool.v1.AccountPoolService/Acquire
  bin/tools/grpcurl -plaintext $LISTEN_ADDR slotwatch.accountpool.v1.AccountPoolService/GetPoolStatus

Ctrl-C stops it.
MSG
exec bin/accountpool
