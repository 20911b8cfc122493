#!/usr/bin/env bash
# Make sure Debian's chromium is installed at /usr/bin/chromium for the admin page's browser test
# (tests/e2e/test_admin_alerts_browser.py drives it with playwright; we never download a browser build).
# A no-op when it is already there; otherwise needs root (as the CI machine and the dev machines run).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-browser: $CHROMIUM is missing; install Debian's chromium (apt-get install chromium) as root" >&2
  exit 1
fi

echo "ensure-browser: installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# No recommends (avahi, cups helpers, ...): a headless test needs the browser and one font family.
apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
test -x "$CHROMIUM" || { echo "ensure-browser: chromium installed but $CHROMIUM is missing" >&2; exit 1; }
echo "ensure-browser: chromium is ready"
