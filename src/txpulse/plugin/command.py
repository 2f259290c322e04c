# -*- test-case-name: tests.server.test_auth -*-
"""
The C{txpulse} command: administrative helpers.

  - C{txpulse gen-key [-o FILE]}: print (or write) a new JWK set for
    browser tokens, to pass to C{twistd txpulse --jwk FILE}.
  - C{txpulse gen-api-key IDENTITY}: print a random API key and the JSON
    line to add to the C{--auth-keys} file.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence

from ..server.auth import generateKeySet

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """
    Entry point of the C{txpulse} console script (also C{python -m txpulse}).
    """
    parser = argparse.ArgumentParser(prog="txpulse", description="txpulse administrative commands")
    commands = parser.add_subparsers(dest="command", required=True)
    genKey = commands.add_parser("gen-key", help="generate a JWK set for browser tokens (--jwk)")
    genKey.add_argument("-o", "--output", help="write to this file (mode 0600) instead of stdout")
    genApiKey = commands.add_parser("gen-api-key", help="generate an API key for an identity (--auth-keys)")
    genApiKey.add_argument("identity", help="who the key stands for, e.g. alice")
    options = parser.parse_args(argv)
    if options.command == "gen-key":
        keySet = generateKeySet()
        if options.output is None:
            print(keySet)
            return 0
        try:
            descriptor = os.open(options.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as error:
            print(f"txpulse gen-key: cannot create {options.output}: {error.strerror}", file=sys.stderr)
            return 1
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(keySet + "\n")
        print(f"wrote a new JWK set to {options.output}", file=sys.stderr)
        return 0
    key = secrets.token_urlsafe(32)
    print(json.dumps({key: options.identity}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
