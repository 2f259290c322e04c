"""
Moved to L{txpulse.logs.redact}. Importing a name from here still works, with
a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["REDACTED", "SECRET_PARAMETERS", "MAX_LOGGED_LENGTH", "redactURL", "redactText", "clip", "loggableURL"]  # noqa: F822

_MOVED = {
    "REDACTED": "txpulse.logs.redact",
    "SECRET_PARAMETERS": "txpulse.logs.redact",
    "MAX_LOGGED_LENGTH": "txpulse.logs.redact",
    "redactURL": "txpulse.logs.redact",
    "redactText": "txpulse.logs.redact",
    "clip": "txpulse.logs.redact",
    "loggableURL": "txpulse.logs.redact",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)
