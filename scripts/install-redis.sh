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
. scripts/lib/apt.sh

if command -v redis-server >/dev/null 2>&1; then
    echo "install-redis: redis-server present ($(redis-server --version | awk '{print $3}'))"
    exit 0
fi

apt_install_quietly install-redis redis-server
echo "install-redis: installed redis-server ($(redis-server --version | awk '{print $3}'))"
