# -*- test-case-name: tests.server.test_keyfile,tests.plugin.test_command -*-
"""
The rules for the files the server trusts at start-up (the C{--auth-keys}
file, the C{--jwk} key set), in one place, so that the server
(L{txpulse.server.auth.ApiKeys.fromFile}) and C{txpulse gen-api-key}
accept and refuse exactly the same files.

  - A file is read only if its path resolves (symlinks followed) to a
    I{regular} file of at most L{MAX_FILE_SIZE} bytes: a device
    (C{/dev/zero}), a FIFO (which would block), a directory or a socket is
    refused without being read, and so is a larger file. The read itself is
    capped too, for a file that grows after the check.
  - A keys file is one JSON object C{{"<key>": "<identity>", ...}}: no key
    twice (Python's C{json} would silently keep the last one), no empty
    key, and every identity valid (L{identityProblem}).
  - An identity is 1 to L{MAX_IDENTITY_LENGTH} characters (the chat's rule
    for names, since on a protected C{/chat} the identity I{is} the name),
    has no control or invisible formatting character (C{Cc}, C{Cf}, C{Cs},
    C{Co}, C{Cn}, C{Zl}, C{Zp}: newlines, ESC sequences, bidi overrides,
    zero-width characters) and no space at either end.

Errors are L{ValueError}s of one line that name the file and the bad entry
by its position and (escaped, clipped) identity, never by its key: keys are
secrets.
"""

from __future__ import annotations

import json
import os
import stat
import unicodedata
from collections.abc import Mapping
from pathlib import Path

__all__ = ["MAX_FILE_SIZE", "MAX_IDENTITY_LENGTH", "identityProblem", "readBounded", "parseKeys", "checkKeys"]

#: The largest keys file (or JWK set) read, in bytes: about 200,000 keys.
MAX_FILE_SIZE = 16 * 1024 * 1024

#: The longest identity, in characters: the chat's C{MAX_NAME}.
MAX_IDENTITY_LENGTH = 32

#: Unicode categories refused in an identity: controls, formatting
#: (bidi overrides, zero-width), surrogates, private use, unassigned, and
#: line/paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def identityProblem(identity: object) -> str | None:
    """
    What is wrong with C{identity}, or C{None} for a valid one (see the
    module docstring for the rule).
    """
    if not isinstance(identity, str):
        return "the identity must be a string"
    if not identity.strip():
        return "the identity must not be empty or blank"
    if len(identity) > MAX_IDENTITY_LENGTH:
        return f"the identity must be at most {MAX_IDENTITY_LENGTH} characters, not {len(identity)}"
    if any(unicodedata.category(character) in _REFUSED_CATEGORIES for character in identity):
        return "the identity must not contain control or invisible formatting characters"
    if identity != identity.strip():
        return "the identity must not start or end with a space"
    return None


def _show(identity: object) -> str:
    """
    C{identity} safe for one log or terminal line: escaped, clipped.
    """
    text = ascii(identity)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def readBounded(path: str | Path, limit: int = MAX_FILE_SIZE) -> str:
    """
    The UTF-8 text of the regular file C{path} resolves to.

    @raise FileNotFoundError: when there is no such file.
    @raise ValueError: (one line naming C{path}) for anything but a regular
        file, a file over C{limit} bytes, or a read error.
    """
    resolved = os.path.realpath(path)
    shown = str(path) if resolved == os.path.abspath(path) else f"{path} (-> {resolved})"
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOCTTY:
        # a terminal is never adopted. Neither matters for a regular file.
        # (Both are POSIX; elsewhere the fstat below still refuses a FIFO.)
        descriptor = os.open(resolved, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ValueError(f"cannot read {shown}: {error.strerror}") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ValueError(f"{shown} is {_kind(status.st_mode)}; expected a regular file")
        if status.st_size > limit:
            raise ValueError(f"{shown} is {status.st_size:,} bytes, over the limit of {limit:,}")
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(descriptor, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ValueError(f"{shown} grew over the limit of {limit:,} bytes while being read")
    except OSError as error:
        raise ValueError(f"cannot read {shown}: {error.strerror}") from None
    finally:
        os.close(descriptor)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{shown} is not UTF-8 (byte {error.start})") from None


class _DuplicateKey(ValueError):
    pass


def _refuseDuplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for position, (key, value) in enumerate(pairs, 1):
        if key in seen:
            raise _DuplicateKey(f"entry #{position} (identity {_show(value)}) repeats the key of an earlier entry")
        seen[key] = value
    return seen


def parseKeys(text: str, where: str) -> dict[str, str]:
    """
    The keys of a keys file's C{text}.

    @param where: the file, for the messages.
    @raise ValueError: (one line naming C{where} and the bad entry) for
        anything but a JSON object of non-empty keys to valid identities
        with no key twice.
    """
    try:
        data = json.loads(text, object_pairs_hook=_refuseDuplicates)
    except _DuplicateKey as error:
        raise ValueError(f"{where}: {error}") from None
    except ValueError as error:
        raise ValueError(f"{where} is not JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f'{where}: expected a JSON object {{"<key>": "<identity>", ...}}')
    checkKeys(data, where)
    return data


def checkKeys(keys: Mapping[str, object], where: str) -> None:
    """
    Check every entry of C{keys} (L{parseKeys}' rules but duplicates).

    @raise ValueError: naming C{where} and the first bad entry.
    """
    for position, (key, identity) in enumerate(keys.items(), 1):
        if not isinstance(key, str) or not key:
            problem: str | None = "the key must be a non-empty string"
        else:
            problem = identityProblem(identity)
        if problem is not None:
            raise ValueError(f"{where}: entry #{position} (identity {_show(identity)}): {problem}")
