#!/usr/bin/env bash
# buf breaking against the main branch of this repository, so a
# wire-incompatible proto change fails `make lint`. Works in a clone, a
# worktree, on a detached HEAD and in a shallow clone that fetched main
# (as origin/main). Only when no main exists here at all does it skip,
# saying how to get one.
set -euo pipefail
cd "$(dirname "$0")/.."

if git rev-parse -q --verify refs/heads/main >/dev/null; then
	against='.git#branch=main'
elif sha=$(git rev-parse -q --verify refs/remotes/origin/main); then
	against=".git#ref=$sha"
else
	echo "buf breaking: skipped, this checkout has neither a main branch nor origin/main" >&2
	echo "  (git fetch origin main:main, or clone without --single-branch, to check)" >&2
	exit 0
fi
echo "buf breaking --against '$against'"
buf breaking --against "$against"
