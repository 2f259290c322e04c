"""
Sphinx configuration of the txpulse documentation (C{make docs}).

The topic pages are Markdown (MyST), so that they and the README share one
syntax. The API reference is pydoctor's (epytext, as Twisted's is), built by
its Sphinx extension into C{api/} of the output, with an intersphinx
inventory so that the pages can link to it.

The machine that builds the docs may have no internet access, so the links
from docstrings to Twisted's and Python's documentation do not use their
published C{objects.inv}: L{writeExternalInventories} writes a small one for
each, listing the Twisted names txpulse's modules import (pydoctor's URL
scheme: C{module.Class.html}, C{module.html#function}) and Python's builtins.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
import sys
import zlib
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
SOURCE = ROOT / "src"
sys.path.insert(0, str(SOURCE))

import txpulse  # noqa: E402

project = "txpulse"
author = "the txpulse authors"
copyright = "2026, the txpulse authors"
release = txpulse.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.intersphinx",
    "pydoctor.sphinx_ext.build_apidocs",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]
html_theme = "alabaster"
html_title = f"txpulse {release}"
html_static_path: list[str] = []
html_theme_options = {"description": "A WebSocket toolkit for Twisted", "fixed_sidebar": True}

TWISTED_API = "https://docs.twisted.org/en/stable/api/"
PYTHON_DOCS = "https://docs.python.org/3/"
INVENTORIES = DOCS / "_build" / "inventories"


def _entry(name: str, role: str, uri: str) -> str:
    return f"{name} py:{role} 1 {uri} -"


def _inventory(path: Path, project: str, entries: list[str]) -> None:
    """
    Write a Sphinx C{objects.inv} (version 2) holding C{entries}.
    """
    head = f"# Sphinx inventory version 2\n# Project: {project}\n# Version: \n# The remainder of this file is compressed using zlib.\n"
    body = "\n".join(sorted(set(entries))) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head.encode() + zlib.compress(body.encode()))


def _publicModule(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def _twistedEntries() -> list[str]:
    """
    Every public class, interface and function of every public Twisted
    module that importing all of txpulse loads, at the URL pydoctor gives
    it on docs.twisted.org (re-exports of private modules under the public
    module that re-exports them).
    """
    for module in pkgutil.walk_packages([str(SOURCE / "txpulse")], "txpulse."):
        if module.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional part whose extra is missing
            pass
    entries = []
    for name, module in sorted(sys.modules.items()):
        if module is None or not name.startswith("twisted.") or not _publicModule(name):
            continue
        entries.append(_entry(name, "module", f"{name}.html"))
        for attribute, value in list(vars(module).items()):
            if attribute.startswith("__"):
                continue
            home = getattr(value, "__module__", None)
            if not isinstance(home, str) or not home.startswith("twisted"):
                continue
            where = home if _publicModule(home) and home in sys.modules else name
            if inspect.isclass(value) or type(value).__name__ == "InterfaceClass":
                entries.append(_entry(f"{name}.{attribute}", "class", f"{where}.{attribute}.html"))
                for member in vars(value) if inspect.isclass(value) else ():
                    if not member.startswith("_"):
                        entries.append(
                            _entry(f"{name}.{attribute}.{member}", "method", f"{where}.{attribute}.html#{member}")
                        )
            elif inspect.isfunction(value):
                entries.append(_entry(f"{name}.{attribute}", "function", f"{where}.html#{attribute}"))
    return entries + _shortNames(entries)


def _shortNames(entries: list[str]) -> list[str]:
    """
    The public Twisted classes under their bare names too (C{Deferred},
    C{ClientService}, C{Site}), where the name is unambiguous: a docstring
    may name one that its module imports only for type checking.
    """
    homes: dict[str, set[str]] = {}
    for entry in entries:
        name, role, _, uri, _ = entry.split(" ")
        if role == "py:class" and not name.rsplit(".", 1)[1].startswith("_"):
            homes.setdefault(name.rsplit(".", 1)[1], set()).add(uri)
    return [_entry(short, "class", uri) for short, (uri,) in ((s, u) for s, u in homes.items() if len(u) == 1)]


def _pythonEntries() -> list[str]:
    """
    Python's builtins: exceptions, constants, functions and types.
    """
    entries = []
    for name, value in vars(builtins).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(value) and issubclass(value, BaseException):
            entries.append(_entry(name, "exception", f"library/exceptions.html#{name}"))
        elif name in ("None", "True", "False", "NotImplemented", "Ellipsis"):
            entries.append(_entry(name, "data", f"library/constants.html#{name}"))
        elif inspect.isclass(value):
            entries.append(_entry(name, "class", f"library/functions.html#{name}"))
        else:
            entries.append(_entry(name, "function", f"library/functions.html#{name}"))
    return entries


def writeExternalInventories() -> tuple[Path, Path]:
    """
    Write the Twisted and Python inventories; return their paths.
    """
    twisted, python = INVENTORIES / "twisted.inv", INVENTORIES / "python.inv"
    _inventory(twisted, "Twisted", _twistedEntries())
    _inventory(python, "Python", _pythonEntries())
    return twisted, python


_twistedInventory, _pythonInventory = writeExternalInventories()

intersphinx_mapping = {
    "twisted": (TWISTED_API, str(_twistedInventory)),
    "python": (PYTHON_DOCS, str(_pythonInventory)),
}

# pydoctor: the API reference, into <output>/api. Anything it warns about
# (a docstring it cannot parse, a link it cannot resolve) is a Sphinx
# warning, so `make docs` (sphinx-build -W) fails on it.
pydoctor_args = [
    "--project-name=txpulse",
    f"--project-version={release}",
    "--project-url=../index.html",
    "--docformat=epytext",
    f"--project-base-dir={SOURCE}",
    "--html-output={outdir}/api",
    f"--intersphinx-file={_twistedInventory}::{TWISTED_API}",
    f"--intersphinx-file={_pythonInventory}::{PYTHON_DOCS}",
    # The shims of module paths that moved (they warn when used).
    *(
        f"--privacy=HIDDEN:txpulse.{name}"
        for name in ("apps", "auth", "chat", "hub", "interfaces", "resource", "site", "tcp", "broker")
    ),
    str(SOURCE / "txpulse"),
]
pydoctor_url_path = "api/"
