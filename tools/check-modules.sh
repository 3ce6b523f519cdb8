#!/usr/bin/env bash
# Each module of go.work stands alone: with GOWORK=off its go.mod and go.sum
# are what `go mod tidy` makes them (every import required, direct/indirect
# marked right, siblings reached through `replace ../x`), and it builds and
# vets. go.work stays a convenience on top. Modules come from the configured
# module proxy, or from the module cache when offline.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fail=0
for dir in $(go list -m -f '{{.Dir}}'); do
	mod=${dir#"$root"/}
	if ! out=$(cd "$dir" && GOWORK=off go mod tidy -diff 2>&1); then
		echo "$mod: go.mod/go.sum are not tidy; run (cd $mod && GOWORK=off go mod tidy):"
		echo "$out" | grep -v '^go: downloading' | head -40
		fail=1
		continue
	fi
	if ! out=$(cd "$dir" && GOWORK=off go build ./... 2>&1 && GOWORK=off go vet ./... 2>&1); then
		echo "$mod: does not build on its own (GOWORK=off):"
		echo "$out" | head -40
		fail=1
	fi
done
exit $fail
