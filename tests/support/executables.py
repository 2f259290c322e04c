"""
Finding the system executables the suite runs (C{redis-server}, nginx):
from an environment variable, C{PATH} or C{/usr/sbin}; a test that needs
one that is missing is skipped, or fails when C{CI} is set.
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["executable"]


def executable(name: str, *, env: str | None = None) -> str:
    """
    The path of system executable C{name} (from C{$env} when that variable
    is set, else C{PATH} plus C{/usr/sbin}, where Debian puts nginx); skip
    the test without it, or fail it when C{CI} is set.
    """
    found = (os.environ.get(env) if env else None) or shutil.which(
        name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    )
    if found is None:
        message = f"{name} not found (run scripts/install-{'nginx' if name == 'nginx' else 'redis'}.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found
