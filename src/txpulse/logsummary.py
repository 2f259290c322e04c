"""
Moved to L{txpulse.logs.summary}. Importing a name from here still works, with
a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["SummaryLog", "OTHERS", "DEFAULT_MAX_KEYS", "DEFAULT_MAX_KINDS"]  # noqa: F822

_MOVED = {
    "OTHERS": "txpulse.logs.summary",
    "DEFAULT_MAX_KEYS": "txpulse.logs.summary",
    "DEFAULT_MAX_KINDS": "txpulse.logs.summary",
    "Summarize": "txpulse.logs.summary",
    "SummaryLog": "txpulse.logs.summary",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)
