# -*- test-case-name: tests.plugin.test_command,tests.server.test_auth -*-
"""
The C{txpulse} command: administrative helpers.

  - C{txpulse gen-key [-o FILE]}: print (or write, mode 0600) a new JWK set
    for browser tokens, to pass to C{twistd txpulse --jwk FILE} (needs the
    C{auth} extra: C{pip install txpulse[auth]}).
  - C{txpulse gen-api-key IDENTITY [--auth-keys FILE]}: a random API key
    for IDENTITY (1 to 32 characters, no control character, no space at
    either end: L{txpulse.server.keyfile}). Without C{--auth-keys}, print
    the JSON line to add to the C{--auth-keys} file; with it, add the key to
    FILE (created mode 0600 if missing; rewritten in one piece, mode 0600,
    keeping its other keys, under a lock so that parallel runs lose no key;
    a symlink is written through) and print the key. FILE must be what the
    server accepts: a regular file of at most 16 MiB, valid JSON, no key
    twice, valid identities; otherwise it is left unchanged (exit 1).
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
from ..server.keyfile import MAX_FILE_SIZE, identityProblem, parseKeys, readBounded

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
    genApiKey.add_argument(
        "identity",
        help="who the key stands for, e.g. alice: 1 to 32 characters, no control character, no space at either end",
    )
    genApiKey.add_argument(
        "--auth-keys",
        metavar="FILE",
        help="add the key to this keys file (created mode 0600 if missing) and print only the key",
    )
    options = parser.parse_args(argv)
    if options.command == "gen-key":
        return _genKey(options.output)
    problem = identityProblem(options.identity)
    if problem is not None:
        print(f"txpulse gen-api-key: {problem}: {ascii(options.identity)[:40]}", file=sys.stderr)
        return 1
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
    C{path}, creating it if missing.

    Safe against concurrent runs and crashes: the read-modify-write happens
    under an exclusive C{flock} on a lock file beside the keys file
    (C{.<name>.lock}, mode 0600, left in place: removing it would let two
    runs lock two different files), and the file is rewritten whole: a new
    file in the same directory (mode 0600), fsynced, renamed over it with
    C{os.replace}, so a reader (the server) sees the old file or the new
    one, never half of one, and no run's key is lost.

    A symlink is written I{through}: the file it resolves to is replaced
    (atomically, as above) and the link is kept, since that file is the
    one the server reads. The file is read by the server's rules
    (L{txpulse.server.keyfile}): a regular file of at most 16 MiB, no key
    twice, valid identities; an empty file counts as no keys.

    @raise ValueError: (one line) for an invalid C{identity}; when the file
        cannot be read or written, is not a regular file, is too large, or
        is not a valid keys file (it is then left untouched); or when it
        already has C{key}.
    """
    problem = identityProblem(identity)
    if problem is not None:
        raise ValueError(f"{problem}: {ascii(identity)[:40]}")
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        # Refused before a lock file is made beside, say, /dev/zero.
        try:
            readBounded(path)
        except (OSError, ValueError) as error:
            raise ValueError(f"{error}; left unchanged") from None
    lockPath = target.parent / f".{target.name}.lock"
    try:
        lock = os.open(lockPath, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise ValueError(f"cannot lock {path} ({lockPath}): {error.strerror}") from None
    try:
        import fcntl  # POSIX only: the rest of the command works without it

        fcntl.flock(lock, fcntl.LOCK_EX)
        _addUnderLock(Path(path), target, key, identity)
    finally:
        os.close(lock)  # (releases the lock)


def _addUnderLock(path: Path, target: Path, key: str, identity: str) -> None:
    """
    L{addApiKey}'s read-modify-write of C{target} (C{path} resolved), with
    the lock held.
    """
    try:
        text = readBounded(path)
    except FileNotFoundError:
        keys: dict[str, str] = {}
    except ValueError as error:
        raise ValueError(f"{error}; left unchanged") from None
    else:
        try:
            keys = parseKeys(text, str(path)) if text.strip() else {}
        except ValueError as error:
            raise ValueError(f"{error}; left unchanged") from None
    if key in keys:
        raise ValueError(f"{path} already has this key")
    keys[key] = identity
    content = (json.dumps(keys, indent=2) + "\n").encode("utf-8")
    if len(content) > MAX_FILE_SIZE:
        raise ValueError(f"{path} would grow over {MAX_FILE_SIZE:,} bytes (the server's limit); left unchanged")
    try:
        # mkstemp creates the file mode 0600, in the same directory so
        # that the rename is atomic.
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise ValueError(f"cannot write beside {path}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as error:
        os.unlink(temporary)
        raise ValueError(f"cannot write {path}: {error.strerror}") from None
    # The rename is durable once the directory is on disk too.
    try:
        directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # pragma: no cover - a directory we just wrote in
        return
    try:
        os.fsync(directory)
    except OSError:  # pragma: no cover - some filesystems refuse it
        pass
    finally:
        os.close(directory)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
