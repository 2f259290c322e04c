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

nginx_version() { nginx -v 2>&1 | sed 's|.*nginx/||'; }

# Debian installs nginx in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

if command -v nginx >/dev/null 2>&1; then
    echo "install-nginx: nginx present ($(nginx_version))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "install-nginx: nginx missing and not root (run as root or install nginx)" >&2
        exit 1
    fi
else
    SUDO=
fi

# Keep apt from starting the packaged service (it would take port 80):
# exit status 101 of policy-rc.d means "action forbidden" to invoke-rc.d.
# An existing policy-rc.d is left alone.
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    added_policy=1
fi
cleanup() { if [ -n "$added_policy" ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

# apt's chatter is shown only if something fails.
out=$(mktemp)
if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
       $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx; } >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    echo "install-nginx: apt-get failed" >&2
    exit 1
fi
rm -f "$out"
echo "install-nginx: installed nginx ($(nginx_version))"
