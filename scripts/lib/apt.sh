# Sourced by scripts/install-*.sh: install Debian packages quietly, as root
# (or through sudo), without letting apt start their system services.
#
#   apt_install_quietly TAG PACKAGE...
#
# TAG prefixes the messages ("install-redis: ..."). The packaged service is
# kept from starting by a temporary policy-rc.d (exit status 101 means
# "action forbidden" to invoke-rc.d; an existing one is left alone): the
# tests start their own servers on free loopback ports. apt's chatter
# (debconf notes, ...) is shown only if something fails.

apt_install_quietly() {
    local tag=$1
    shift
    local sudo=
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
            echo "$tag: $* missing and not root (run as root or install $*)" >&2
            return 1
        fi
    fi
    local policy=/usr/sbin/policy-rc.d added_policy="" out status=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        added_policy=1
    fi
    out=$(mktemp)
    if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
           $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >"$out" 2>&1; then
        cat "$out" >&2
        echo "$tag: apt-get failed" >&2
        status=1
    fi
    rm -f "$out"
    if [ -n "$added_policy" ]; then $sudo rm -f "$policy"; fi
    return $status
}
