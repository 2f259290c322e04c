#!/usr/bin/env bash
# Install what the browser test (tests/browser) needs, idempotently:
#   - Debian's chromium at /usr/bin/chromium (apt-get, needs root);
#   - Python playwright in the project's virtualenv (.venv).
# Playwright's own browser downloads are NOT used (`playwright install` is
# never run): the test launches /usr/bin/chromium via executable_path.
#
# Usage: scripts/install-browser.sh            (from anywhere; VENV=... to override)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
CHROMIUM=/usr/bin/chromium
did=""
note() { did="${did:+$did; }$1"; }

if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
            echo "install-browser: $CHROMIUM missing and not root (run as root or install chromium)" >&2
            exit 1
        fi
    else
        SUDO=
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    note "installed chromium ($("$CHROMIUM" --version 2>/dev/null || echo '?'))"
else
    note "chromium present"
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "install-browser: no virtualenv at $VENV (run 'make install' first)" >&2
    exit 1
fi
if ! "$VENV/bin/python" -c "import playwright.sync_api" >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install -q playwright
    note "installed playwright $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("playwright"))')"
else
    note "playwright present"
fi

echo "install-browser: $did"
