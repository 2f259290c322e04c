#!/usr/bin/env bash
# Install what the Redis broker tests (tests/redis) need, idempotently:
# Debian's redis-server (apt-get, needs root). The system service is not
# started (policy-rc.d forbids it during the install, if systemd isn't
# running anyway): the tests start their own redis-server on a free
# loopback port and stop it afterwards.
#
# Usage: scripts/install-redis.sh              (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v redis-server >/dev/null 2>&1; then
    echo "install-redis: redis-server present ($(redis-server --version | awk '{print $3}'))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "install-redis: redis-server missing and not root (run as root or install redis-server)" >&2
        exit 1
    fi
else
    SUDO=
fi

# Keep apt from starting the packaged service: exit status 101 of
# policy-rc.d means "action forbidden" to invoke-rc.d. An existing
# policy-rc.d is left alone.
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    added_policy=1
fi
cleanup() { if [ -n "$added_policy" ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

# apt's chatter (debconf notes, ...) is shown only if something fails.
out=$(mktemp)
if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
       $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; } >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    echo "install-redis: apt-get failed" >&2
    exit 1
fi
rm -f "$out"
echo "install-redis: installed redis-server ($(redis-server --version | awk '{print $3}'))"
