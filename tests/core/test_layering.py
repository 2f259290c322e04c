"""
The layering rule, checked: the protocol core (and the exceptions it uses)
never imports Twisted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import txpulse

CHECK = """
import importlib, importlib.util, pkgutil, sys
# Register the txpulse package without running its __init__ (which re-exports
# the Twisted adapters): what is checked is the core's own import graph.
spec = importlib.util.spec_from_file_location(
    "txpulse", {init!r}, submodule_search_locations=[{pkg!r}]
)
sys.modules["txpulse"] = importlib.util.module_from_spec(spec)
import txpulse.core
names = ["txpulse.exceptions"] + [
    "txpulse.core." + m.name for m in pkgutil.iter_modules(txpulse.core.__path__)
]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m == "twisted" or m.startswith(("twisted.", "zope")))
print(len(names), loaded)
"""


def test_core_imports_no_twisted() -> None:
    """
    Importing every C{txpulse.core} module in a fresh interpreter loads no
    C{twisted} (or zope) module.
    """
    package = Path(txpulse.__file__).parent
    code = CHECK.format(init=str(package / "__init__.py"), pkg=str(package))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, loaded = result.stdout.strip().split(" ", 1)
    assert int(count) >= 5, "every core module was imported"
    assert loaded == "[]", loaded
