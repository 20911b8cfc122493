#!/usr/bin/env bash
# Make sure Debian's promtool, prometheus and amtool are installed in /usr/bin for the alert-rule checks
# (tests/integration/test_alert_rules.py runs promtool and amtool on docker/prometheus and
# docker/alertmanager; we never download release tarballs).
# A no-op when they are already there; otherwise needs root (as the CI machine and the dev machines run).
set -euo pipefail

TOOLS=(/usr/bin/promtool /usr/bin/prometheus /usr/bin/amtool)
POLICY=/usr/sbin/policy-rc.d

missing() {
  local tool
  for tool in "${TOOLS[@]}"; do
    [ -x "$tool" ] || { echo "$tool"; return 0; }
  done
  return 1
}

if ! absent=$(missing); then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-observability: $absent is missing; install Debian's prometheus and prometheus-alertmanager" \
    "(apt-get install prometheus prometheus-alertmanager) as root" >&2
  exit 1
fi

# The packages start their services on install; a test machine wants only the binaries.
# policy-rc.d answering 101 ("action forbidden") stops invoke-rc.d from starting them. One that is
# already there (container images often have one) is put aside and restored afterwards.
SAVED="$POLICY.ensure-observability"
restore_policy() {
  rm -f "$POLICY"
  if [ -e "$SAVED" ]; then mv "$SAVED" "$POLICY"; fi
}
if [ -e "$POLICY" ]; then mv "$POLICY" "$SAVED"; fi
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' >"$POLICY"
chmod 0755 "$POLICY"

echo "ensure-observability: installing Debian's prometheus and prometheus-alertmanager"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null
if absent=$(missing); then
  echo "ensure-observability: packages installed but $absent is missing" >&2
  exit 1
fi
echo "ensure-observability: promtool, prometheus and amtool are ready"
