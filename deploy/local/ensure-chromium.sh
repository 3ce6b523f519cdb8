#!/usr/bin/env bash
# Installs Debian's chromium when no browser is found at $CHROME_PATH
# (default /usr/bin/chromium). The Checker and its tests drive it headless;
# `make run` prefers chromium-headless-shell (installed alongside), which
# costs a third of full Chromium's CPU per check.
set -euo pipefail
chrome=${CHROME_PATH:-/usr/bin/chromium}
[[ -x $chrome ]] && exit 0
echo "ensure-chromium: $chrome not found; installing the chromium package" >&2
sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
# Optional: the lighter browser `make run` prefers; nothing needs it.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium-headless-shell >/dev/null 2>&1 ||
  echo "ensure-chromium: chromium-headless-shell not installed; make run will use chromium" >&2
[[ -x $chrome ]] || { echo "ensure-chromium: chromium installed, but $chrome is still missing; set CHROME_PATH" >&2; exit 1; }
