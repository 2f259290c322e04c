"""
Packaging: the wheel ships the twistd dropin without claiming Twisted's own
packages, and the dropin stays cheap to scan.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a clean copy of what the wheel is made of: setuptools reuses
    # the checkout's build/ directory, which may hold modules that have since
    # moved or been deleted.
    tree = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "dropin.cache")
    for name in ("src", "twisted"):
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(tree)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("txpulse-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_contains_the_dropin_but_not_twisted_packages(wheel: zipfile.ZipFile) -> None:
    """
    The wheel has C{twisted/plugins/txpulse_plugin.py} and neither
    C{twisted/__init__.py} nor C{twisted/plugins/__init__.py}, which belong
    to Twisted (shipping them would break Twisted on uninstall).
    """
    names = set(wheel.namelist())
    assert "twisted/plugins/txpulse_plugin.py" in names
    assert "twisted/__init__.py" not in names
    assert "twisted/plugins/__init__.py" not in names


def test_wheel_contains_package_data(wheel: zipfile.ZipFile) -> None:
    """
    The static site and the typing marker are package data.
    """
    names = set(wheel.namelist())
    assert "txpulse/demos/static/index.html" in names
    assert "txpulse/py.typed" in names


def test_wheel_contains_every_module(wheel: zipfile.ZipFile) -> None:
    """
    Every module and static file of C{src/txpulse} is in the wheel (each
    package has to be listed in C{setup.cfg}), and nothing else of it is.
    """
    source = ROOT / "src"
    expected = {
        path.relative_to(source).as_posix()
        for path in (source / "txpulse").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    shipped = {name for name in wheel.namelist() if name.startswith("txpulse/")}
    assert shipped == expected


def test_plugin_is_found_and_cheap_to_scan() -> None:
    """
    C{getPlugins(IServiceMaker)} finds the C{txpulse} tapname, and scanning
    plugins imports neither txpulse's adapters nor its core.
    """
    code = (
        "import sys\n"
        "from twisted.plugin import getPlugins\n"
        "from twisted.application.service import IServiceMaker\n"
        "names = [p.tapname for p in getPlugins(IServiceMaker)]\n"
        "print('txpulse' in names, sorted(m for m in sys.modules if m.startswith('txpulse')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert result.stdout.strip() == "True []"
