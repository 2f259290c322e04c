"""
The layering rule, checked: the protocol core (with its exceptions) never
imports Twisted, and neither does the C{txpulse} package itself on the way to
it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import txpulse

CHECK = """
import importlib, importlib.util, pkgutil, sys
# Register the txpulse package without running its __init__: what is checked
# is the core's own import graph.
spec = importlib.util.spec_from_file_location(
    "txpulse", {init!r}, submodule_search_locations=[{pkg!r}]
)
sys.modules["txpulse"] = importlib.util.module_from_spec(spec)
import txpulse.core
names = ["txpulse.core." + m.name for m in pkgutil.iter_modules(txpulse.core.__path__)]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m == "twisted" or m.startswith(("twisted.", "zope")))
print(len(names), loaded)
"""

#: Run in a fresh interpreter: the statements to run, then the Twisted (and
#: zope) modules they loaded.
IMPORTS = """
import importlib, pkgutil, sys
{statements}
loaded = sorted(m for m in sys.modules if m == "twisted" or m.startswith(("twisted.", "zope")))
print(loaded)
"""

ALL_CORE = """
import txpulse.core
for m in pkgutil.iter_modules(txpulse.core.__path__):
    importlib.import_module("txpulse.core." + m.name)
"""


def _twistedLoadedBy(statements: str) -> str:
    code = IMPORTS.format(statements=statements)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_core_imports_no_twisted() -> None:
    """
    Importing every C{txpulse.core} module in a fresh interpreter loads no
    C{twisted} (or zope) module.
    """
    package = Path(txpulse.__file__).parent
    code = CHECK.format(init=str(package / "__init__.py"), pkg=str(package))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, loaded = result.stdout.strip().split(" ", 1)
    assert int(count) >= 7, "every core module was imported"
    assert loaded == "[]", loaded


def test_import_txpulse_core_loads_no_twisted() -> None:
    """
    C{import txpulse.core} through the real package (its C{__init__} runs
    first) loads no Twisted module: the package re-exports its Twisted-backed
    names lazily.
    """
    assert _twistedLoadedBy("import txpulse.core") == "[]"


def test_import_txpulse_then_core_loads_no_twisted() -> None:
    """
    C{import txpulse}, then every core module, and the core names C{txpulse}
    re-exports (C{CloseCode}, C{ProtocolError}, ...) load no Twisted module.
    """
    statements = "import txpulse\n" + ALL_CORE + "txpulse.CloseCode, txpulse.ProtocolError, txpulse.AssemblyBudget\n"
    assert _twistedLoadedBy(statements) == "[]"


def test_twisted_backed_names_load_on_use() -> None:
    """
    The check above is not vacuous: asking C{txpulse} for a Twisted-backed
    name (C{WebSocketResource}) does load Twisted.
    """
    assert "twisted.web.resource" in _twistedLoadedBy("import txpulse\ntxpulse.WebSocketResource")
