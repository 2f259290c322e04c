# -*- test-case-name: tests.settings.test_settings -*-
"""
Reading settings from command-line text: seconds as numbers, sizes as bytes
with an optional binary C{K}, C{M} or C{G} suffix (C{64K} is 65536), counts
as whole numbers.

Each parser raises L{ValueError} with a message that does not name the
option; the adapters (L{txpulse.settings.commandline.usageCoerce},
L{txpulse.settings.commandline.argumentType}) add the name. They are public,
for an entry point's other options.

Standard library only.
"""

from __future__ import annotations

import math

__all__ = [
    "parseSeconds",
    "parsePositiveSeconds",
    "parseSize",
    "parseCount",
    "parsePositiveCount",
]

_SIZE_SUFFIXES = {
    "": 1,
    "K": 1 << 10,
    "KB": 1 << 10,
    "KIB": 1 << 10,
    "M": 1 << 20,
    "MB": 1 << 20,
    "MIB": 1 << 20,
    "G": 1 << 30,
    "GB": 1 << 30,
    "GIB": 1 << 30,
}


def parseSeconds(text: str) -> float:
    """
    A number of seconds, zero or more.

    @raise ValueError: for text that is not a finite number, or a negative
        one.
    """
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"not a number of seconds: {text!r}")
    if number < 0:
        raise ValueError(f"must not be negative: {text.strip()}")
    return number


def parsePositiveSeconds(text: str) -> float:
    """
    A number of seconds, more than zero.

    @raise ValueError: as L{parseSeconds} does, and for zero.
    """
    number = parseSeconds(text)
    if number == 0:
        raise ValueError(f"must be positive: {text.strip()}")
    return number


def parseSize(text: str) -> int:
    """
    A size in bytes, more than zero, with an optional binary suffix: C{K},
    C{M} or C{G} (also C{KB}, C{KiB}, ...; any case): C{64K} is 65536.

    @raise ValueError: for anything else, or zero.
    """
    upper = text.strip().upper()
    digits = upper.rstrip("KMGIB")
    suffix = upper[len(digits) :]
    if not digits.isdigit() or suffix not in _SIZE_SUFFIXES:
        raise ValueError(f"not a size in bytes (e.g. 65536, 64K, 16M): {text!r}")
    size = int(digits) * _SIZE_SUFFIXES[suffix]
    if size <= 0:
        raise ValueError(f"must be positive: {text.strip()}")
    return size


def parseCount(text: str) -> int:
    """
    A whole number, zero or more.

    @raise ValueError: for anything else.
    """
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None
    if number < 0:
        raise ValueError(f"must not be negative: {text.strip()}")
    return number


def parsePositiveCount(text: str) -> int:
    """
    A whole number, more than zero.

    @raise ValueError: for anything else.
    """
    number = parseCount(text)
    if number == 0:
        raise ValueError(f"must be positive: {text.strip()}")
    return number


def _showSize(size: int) -> str:
    for suffix, unit in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)
