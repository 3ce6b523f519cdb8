#!/usr/bin/env bash
# buf breaking against the main branch of this repository, so a
# wire-incompatible proto change fails `make lint`. It compares with the
# commit where this branch left main (their merge base), so fields that
# main gained since do not show as deleted here; on main itself that is
# HEAD, so the check covers the uncommitted changes. Main is a local
# branch, else origin/main (a CI clone, a detached HEAD). In a shallow
# clone without the merge base it compares with main's tip, saying so; only
# when no main exists here at all does it skip, saying how to get one.
set -euo pipefail
cd "$(dirname "$0")/.."

main=""
for ref in refs/heads/main refs/remotes/origin/main; do
	if git rev-parse -q --verify "$ref^{commit}" >/dev/null 2>&1; then
		main=$ref
		break
	fi
done
if [ -z "$main" ]; then
	echo "buf breaking: skipped, this checkout has neither a main branch nor origin/main" >&2
	echo "  (git fetch origin main:main, or clone without --single-branch, to check)" >&2
	exit 0
fi
if ! base=$(git merge-base HEAD "$main" 2>/dev/null); then
	base=$(git rev-parse "$main")
	echo "buf breaking: no merge base with $main here (a shallow clone?); comparing with its tip" >&2
fi
echo "buf breaking --against '.git#ref=$base' (merge base with $main)"
buf breaking --against ".git#ref=$base"
