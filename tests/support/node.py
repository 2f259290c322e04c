"""
Node, for the tests that run a page's JavaScript without a browser
(C{tests/test_examples.py}, C{tests/compat/test_twisted_howto.py}): a
harness, an ES module that stands in for the few DOM calls the script
makes, loads the script and prints what the page would show.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["NODE", "needsNode", "run_harness"]

#: The C{node} executable, or C{None}.
NODE = shutil.which("node")

#: Skips a test when there is no Node.
needsNode = pytest.mark.skipif(NODE is None, reason="node is not installed")


@functools.cache
def _webSocketFlags() -> list[str]:
    """
    The flag that gives Node 20 its global C{WebSocket} (Node 22 has it by
    default), if this Node accepts it.
    """
    assert NODE is not None
    probe = subprocess.run([NODE, "--experimental-websocket", "-e", ""], capture_output=True, timeout=30)
    return ["--experimental-websocket"] if probe.returncode == 0 else []


def run_harness(harness: str, tmp_path: Path, *args: str) -> str:
    """
    Run C{harness} (the source of an ES module, written to
    C{tmp_path/harness.mjs}) with Node, its global C{WebSocket} on, and
    C{args} on its command line (within 30 s); what it printed. The test
    fails, with Node's standard error, unless it exits with 0.
    """
    assert NODE is not None
    path = tmp_path / "harness.mjs"
    path.write_text(harness, encoding="utf-8")
    result = subprocess.run([NODE, *_webSocketFlags(), str(path), *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout
