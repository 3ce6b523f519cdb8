#!/usr/bin/env bash
# Installs Debian's chromium when no browser is found at $CHROME_PATH
# (default /usr/bin/chromium). The Checker and its tests drive it headless.
set -euo pipefail
chrome=${CHROME_PATH:-/usr/bin/chromium}
[[ -x $chrome ]] && exit 0
echo "ensure-chromium: $chrome not found; installing the chromium package" >&2
sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
[[ -x $chrome ]] || { echo "ensure-chromium: chromium installed, but $chrome is still missing; set CHROME_PATH" >&2; exit 1; }
