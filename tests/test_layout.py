"""
The test suite mirrors the source: one test package per source package,
every C{test-case-name} header in the source names test modules that exist,
and shared fixtures live in C{tests/support}, not in test modules.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SOURCE = ROOT / "src" / "txpulse"

#: C{# -*- test-case-name: tests.a.test_b,tests.c -*-} (Twisted's convention,
#: which trial's C{--testmodule} reads).
HEADER = re.compile(r"^#\s*-\*-\s*test-case-name:\s*(?P<names>[^\s]+?)\s*-\*-\s*$", re.M)

#: Source packages that are only compatibility shims for old import paths:
#: their tests are those of the package they point to (and tests/test_exports.py).
SHIM_PACKAGES = {"broker"}


def headers() -> list[tuple[str, str]]:
    """
    C{(source file, test module name)} for every name in every
    C{test-case-name} header of the source and the twistd dropin.
    """
    files = [*sorted(SOURCE.rglob("*.py")), *sorted((ROOT / "twisted" / "plugins").glob("*.py"))]
    found = []
    for path in files:
        head = "\n".join(path.read_text(encoding="utf-8").splitlines()[:5])
        for match in HEADER.finditer(head):
            found.extend((str(path.relative_to(ROOT)), name) for name in match.group("names").split(","))
    return found


def test_headers_are_found() -> None:
    """
    The parser sees the headers (so the test below is not vacuous): every
    package of the source has at least one.
    """
    sources = {source for source, _ in headers()}
    assert "src/txpulse/core/connection.py" in sources
    assert len(sources) >= 30, sorted(sources)


@pytest.mark.parametrize(("source", "name"), headers())
def test_test_case_name_header_names_a_test_module_that_exists(source: str, name: str) -> None:
    """
    Each module a C{test-case-name} header names imports-resolves to a
    C{test_*.py} file under C{tests/}.
    """
    assert name.startswith("tests."), f"{source}: {name} is not under tests/"
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, f"{source}: no module {name}"
    origin = Path(spec.origin).resolve()
    assert origin.is_relative_to(TESTS), f"{source}: {name} resolves to {origin}, outside tests/"
    assert origin.name.startswith("test_"), f"{source}: {name} is not a test module"


def test_every_source_package_has_a_test_package() -> None:
    """
    C{src/txpulse/<package>/} has C{tests/<package>/}, a package.
    """
    packages = sorted(
        path.parent.name for path in SOURCE.glob("*/__init__.py") if path.parent.name not in SHIM_PACKAGES
    )
    assert "core" in packages
    missing = [name for name in packages if not (TESTS / name / "__init__.py").is_file()]
    assert missing == []


def test_every_test_folder_is_a_package() -> None:
    """
    Every folder of C{tests/} holding Python files has an C{__init__.py}, so
    its modules import by their dotted names (and relative imports work).
    """
    folders = {path.parent for path in TESTS.rglob("*.py") if "__pycache__" not in path.parts}
    assert [str(f.relative_to(ROOT)) for f in sorted(folders) if not (f / "__init__.py").is_file()] == []


def test_no_test_module_imports_another() -> None:
    """
    Shared fixtures live in C{tests/support} (or C{conftest.py}), never in a
    test module another one imports.
    """
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or "", *(f"{node.module or ''}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            if any(part.startswith("test_") for module in modules for part in module.split(".")):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
