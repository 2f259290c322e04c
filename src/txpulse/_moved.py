# -*- test-case-name: tests.test_exports -*-
"""
The old flat module paths (C{txpulse.hub}, C{txpulse.tap}, ...) still import:
each is a small shim that re-exports the public names of the module it moved
to. Documented paths and entry points re-export silently; the others look
their names up with L{moved}, from their module C{__getattr__} (PEP 562),
which warns with a L{DeprecationWarning} naming the new path.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from typing import Any

__all__ = ["moved"]


def moved(old: str, table: Mapping[str, str], name: str) -> Any:
    """
    Attribute C{name} of the shim module C{old}, loaded from the module
    C{table[name]} that now holds it, with a L{DeprecationWarning} that names
    the new path (attributed to the code that used the old one).

    @raise AttributeError: C{name} was never a public name of C{old}.
    """
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module {old!r} has no attribute {name!r}")
    warnings.warn(f"{old}.{name} moved to {module}.{name}", DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(module), name)
