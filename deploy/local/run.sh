#!/usr/bin/env bash
# run.sh: what `make run` starts, under with-postgres.sh (DATABASE_URL is set).
# bin/slotwatch-demo (services/slotctl/cmd/slotwatch-demo) does the work: it
# starts portalsim, AccountPool, Requests, the Notifier (email to a mail
# sink of the demo's, webhooks to a receiver of its own) and the Checker on
# 127.0.0.1 with auth tokens and a keyset under .data/, loads demo data, and
# shows the Checker's sessions until the email announcing the demo's slot
# arrives; then everything stays
# up until Ctrl-C, which stops it all (and with-postgres.sh then stops the
# Postgres it started, unless another of its runs still uses it). Arguments go to slotwatch-demo (-slot-after 30s).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
exec bin/slotwatch-demo -root "$root" "$@"
