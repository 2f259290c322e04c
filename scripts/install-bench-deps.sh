#!/usr/bin/env bash
# Install what the benchmark suite (bench/) needs from the system,
# idempotently: zlib's headers (bench/loadgen.c inflates permessage-deflate
# replies) and taskset (util-linux) to pin the server and the load generator
# to their cores. The Python peers come from bench/requirements.txt.
#
# Usage: scripts/install-bench-deps.sh              (from anywhere)
set -euo pipefail

missing=()
if ! printf '#include <zlib.h>\nint main(void){return 0;}\n' | ${CC:-gcc} -x c - -o /dev/null -lz 2>/dev/null; then
    missing+=(zlib1g-dev)
fi
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-bench-deps: zlib headers and taskset present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "install-bench-deps: missing ${missing[*]} and not root (install them, or run as root)" >&2
        exit 1
    fi
else
    SUDO=
fi
echo "install-bench-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
