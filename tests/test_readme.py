"""
The README's commands run as written: every code block marked
C{<!-- runnable -->} (see L{tests.support.readme} for the markers) runs, in
order, from the repository root with the virtualenv activated, against the
servers the blocks marked C{<!-- runnable: serve -->} started. The harness
itself is tested on a small Markdown text of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .support.readme import ROOT, Block, blocks, session


def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    """
    Each runnable block of C{README.md} exits 0 (the servers it starts
    serve), in order.
    """
    marked = blocks((ROOT / "README.md").read_text(encoding="utf-8"), "README.md")
    if not marked:
        pytest.skip("no block of README.md is marked runnable yet")
    with session(tmp_path) as readme:
        for block in marked:
            readme.play(block)


SAMPLE = """\
# A sample

<!-- runnable: file=hello.py -->
```python
print("hello from a file")
```

<!-- runnable: serve, timeout=30 -->
```sh
python -m http.server --bind 127.0.0.1 8080
```

<!-- runnable -->
```sh
python hello.py | grep -q "hello from a file"
python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/')"
```

<!-- runnable -->
```python
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:8080/") as page:
    assert page.status == 200
assert sys.prefix != sys.base_prefix, "the virtualenv's python"
```

```sh
echo "not marked: never runs"; exit 1
```
"""


def test_harness_parses_markers() -> None:
    """
    Only the marked blocks are found, with their mode, options, language and
    line.
    """
    found = blocks(SAMPLE, "sample.md")
    assert [(b.mode, b.language, b.file, b.timeout) for b in found] == [
        ("file", "python", "hello.py", 60.0),
        ("serve", "sh", None, 30.0),
        ("run", "sh", None, 60.0),
        ("run", "python", None, 60.0),
    ]
    assert found[0] == Block("sample.md", 5, "python", 'print("hello from a file")\n', "file", "hello.py")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- runnable -->\ntext\n", "right above a code fence"),
        ("<!-- runnable: loudly -->\n```sh\ntrue\n```\n", "unknown runnable option"),
        ("<!-- runnable -->\n```js\n1\n```\n", "cannot run a js block"),
    ],
)
def test_harness_rejects_bad_markers(text: str, message: str) -> None:
    """
    A marker with no fence under it, an unknown option or a language that
    cannot run is an error naming the line, not a block silently skipped.
    """
    with pytest.raises(ValueError, match=message):
        blocks(text, "sample.md")


@pytest.mark.skipif(sys.platform != "linux", reason="process groups, loopback")
def test_harness_runs_a_sample(tmp_path: Path) -> None:
    """
    The sample's blocks run: a file is written, a server started on a free
    port in place of 8080, shell and Python blocks run against it; a failing
    block is an C{AssertionError} with its location and output.
    """
    with session(tmp_path) as sample:
        for block in blocks(SAMPLE, "sample.md"):
            sample.play(block)
        assert sample.port != 8080
        failing = Block("sample.md", 99, "sh", "echo some output; exit 3\n")
        with pytest.raises(AssertionError, match=r"(?s)sample.md:99: exit 3.*some output"):
            sample.play(failing)
    assert sample.servers == []
