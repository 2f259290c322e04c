# -*- test-case-name: tests.plugin.test_command,tests.server.test_auth -*-
"""
The C{txpulse} command: administrative helpers.

  - C{txpulse gen-key [-o FILE]}: print (or write, mode 0600) a new JWK set
    for browser tokens, to pass to C{twistd txpulse --jwk FILE} (needs the
    C{auth} extra: C{pip install txpulse[auth]}).
  - C{txpulse gen-api-key IDENTITY [--auth-keys FILE]}: a random API key
    for IDENTITY. Without C{--auth-keys}, print the JSON line to add to the
    C{--auth-keys} file; with it, add the key to FILE (created mode 0600 if
    missing; rewritten in one piece, mode 0600, keeping its other keys) and
    print the key.
  - C{txpulse --version}.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from .._extras import MissingExtra
from ..server.auth import generateKeySet

__all__ = ["main", "addApiKey"]


def main(argv: Sequence[str] | None = None) -> int:
    """
    Entry point of the C{txpulse} console script (also C{python -m txpulse}).
    """
    parser = argparse.ArgumentParser(prog="txpulse", description="txpulse administrative commands")
    parser.add_argument("--version", action="version", version=f"txpulse {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    genKey = commands.add_parser("gen-key", help="generate a JWK set for browser tokens (--jwk)")
    genKey.add_argument("-o", "--output", help="write to this new file (mode 0600) instead of stdout")
    genApiKey = commands.add_parser("gen-api-key", help="generate an API key for an identity (--auth-keys)")
    genApiKey.add_argument("identity", help="who the key stands for, e.g. alice")
    genApiKey.add_argument(
        "--auth-keys",
        metavar="FILE",
        help="add the key to this keys file (created mode 0600 if missing) and print only the key",
    )
    options = parser.parse_args(argv)
    if options.command == "gen-key":
        return _genKey(options.output)
    key = secrets.token_urlsafe(32)
    if options.auth_keys is None:
        print(json.dumps({key: options.identity}))
        return 0
    try:
        addApiKey(options.auth_keys, key, options.identity)
    except ValueError as error:
        print(f"txpulse gen-api-key: {error}", file=sys.stderr)
        return 1
    print(key)
    print(f"added a key for {options.identity!r} to {options.auth_keys}", file=sys.stderr)
    return 0


def _genKey(output: str | None) -> int:
    try:
        keySet = generateKeySet()
    except MissingExtra as error:
        print(error, file=sys.stderr)
        return 1
    if output is None:
        print(keySet)
        return 0
    try:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        print(f"txpulse gen-key: cannot create {output}: {error.strerror}", file=sys.stderr)
        return 1
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(keySet + "\n")
    print(f"wrote a new JWK set to {output}", file=sys.stderr)
    return 0


def addApiKey(path: str | Path, key: str, identity: str) -> None:
    """
    Add C{key} (standing for C{identity}) to the C{--auth-keys} file
    C{path}, creating it if missing. The file is rewritten whole (a new file
    beside it, mode 0600, renamed over it), so a reader never sees half of
    it and its other keys stay as they were.

    @raise ValueError: when the file cannot be read or written, or is not a
        JSON object of keys (it is then left untouched), or already has
        C{key}.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        keys: dict[str, str] = {}
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    else:
        try:
            keys = json.loads(text) if text.strip() else {}
        except ValueError as error:
            raise ValueError(f"{path} is not JSON ({error}); left unchanged") from None
        if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
            raise ValueError(f'{path} is not a JSON object {{"<key>": "<identity>", ...}}; left unchanged')
    if key in keys:
        raise ValueError(f"{path} already has this key")
    keys[key] = identity
    try:
        # mkstemp creates the file mode 0600, in the same directory so
        # that the rename is atomic.
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise ValueError(f"cannot write beside {path}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(keys, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        os.unlink(temporary)
        raise ValueError(f"cannot write {path}: {error.strerror}") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
