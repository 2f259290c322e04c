"""
Moved to L{txpulse.server.files}. Importing a name from here still works, with
a L{DeprecationWarning} naming its new path.
"""

from __future__ import annotations

from typing import Any

from ._moved import moved

# Resolved by __getattr__ below (hence the noqa).
__all__ = ["BUILTIN_PAGE_POLICY", "StaticFiles", "builtinSite"]  # noqa: F822

_MOVED = {
    "BUILTIN_PAGE_POLICY": "txpulse.server.files",
    "StaticFiles": "txpulse.server.files",
    "builtinSite": "txpulse.server.files",
}


def __getattr__(name: str) -> Any:
    return moved(__name__, _MOVED, name)
