#!/usr/bin/env bash
# Install what the deployment tests (tests/deploy) need, idempotently:
# Debian's nginx (apt-get, needs root). The system service is not started
# (policy-rc.d forbids it during the install, if systemd isn't running
# anyway) and /etc/nginx is never used by the tests: they write their own
# configuration under a temporary prefix and run `nginx -p DIR -c FILE` in
# the foreground on free loopback ports, stopping it afterwards.
#
# Usage: scripts/install-nginx.sh              (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh

nginx_version() { nginx -v 2>&1 | sed 's|.*nginx/||'; }

# Debian installs nginx in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

if command -v nginx >/dev/null 2>&1; then
    echo "install-nginx: nginx present ($(nginx_version))"
    exit 0
fi

apt_install_quietly install-nginx nginx
echo "install-nginx: installed nginx ($(nginx_version))"
