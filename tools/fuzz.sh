#!/usr/bin/env bash
# fuzz.sh [PATTERN]: run every Go fuzz target (func FuzzXxx) of the
# workspace whose name matches PATTERN (a grep -E regexp; all by default),
# one at a time since `go test -fuzz` takes one target, each for FUZZTIME
# (default 1m). A failure leaves the input in the package's
# testdata/fuzz/FuzzXxx/, where `make test` runs it from then on; the script
# goes on with the other targets and exits non-zero at the end.
# Needs TEST_DATABASE_URL (the Makefile's `fuzz` target provides it): the
# RPC fuzzers run the real servers on a real Postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern=${1:-.}
fuzztime=${FUZZTIME:-1m}
# How long the engine may shrink each new interesting input; its default
# (1m) is spent rerunning inputs against Postgres, not finding new ones.
minimize=${FUZZMINIMIZETIME:-10s}

# "./dir target" lines, from the test files (go test -list would build
# every test binary of the workspace first).
targets=$(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' services deploy |
	sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*).*#./\1 \2#' | sort |
	grep -E " .*${pattern}" || true)
if [[ -z $targets ]]; then
	echo "fuzz: no target matches ${pattern}" >&2
	exit 1
fi
echo "fuzz: $(wc -l <<<"$targets") targets, ${fuzztime} each"
failed=()
while read -r pkg name; do
	echo "== ${name} (${pkg})"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" -parallel "${FUZZPARALLEL:-2}" "$pkg"; then
		failed+=("${name} (${pkg})")
	fi
done <<<"$targets"
if ((${#failed[@]})); then
	printf 'fuzz: FAILED %s\n' "${failed[@]}"
	exit 1
fi
echo "fuzz: every target ran ${fuzztime} without a failure"
