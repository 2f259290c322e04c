"""
The README's commands run as written: every code block marked
C{<!-- runnable -->} (see L{tests.support.readme} for the markers) runs, in
order, from the repository root with the virtualenv activated, against the
servers the blocks marked C{<!-- runnable: serve -->} started. The README is
also checked as a front page: its Contents list every section, its links
lead to files that exist (and to headings that exist in them), and it links
every page of the documentation. The harness itself is tested on a small
Markdown text of its own.

C{TXPULSE_README=README.front.md pytest tests/test_readme.py} checks another
file of the repository's root the same way (a draft of the README).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from .support.readme import ROOT, Block, blocks, consoleCommands, missingOutput, session

README = os.environ.get("TXPULSE_README", "README.md")


def _readme() -> str:
    return (ROOT / README).read_text(encoding="utf-8")


def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    """
    Each runnable block of the README exits 0 (the servers it starts serve,
    a console block shows what its commands print), in order.
    """
    marked = blocks(_readme(), README)
    if not marked:
        pytest.skip(f"no block of {README} is marked runnable yet")
    with session(tmp_path) as readme:
        for block in marked:
            readme.play(block)


def _outsideFences(text: str) -> list[str]:
    """
    The lines of Markdown C{text} that are not in a code block.
    """
    lines, fence = [], None
    for line in text.splitlines():
        match = re.match(r"^(```+|~~~+)", line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and line.startswith(fence):
            fence = None
        elif fence is None:
            lines.append(line)
    return lines


def headings(text: str, deepest: int = 6) -> list[tuple[int, str]]:
    """
    The level and title of each heading of Markdown C{text}, code blocks
    left out.
    """
    found = []
    for line in _outsideFences(text):
        match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if match and len(match.group(1)) <= deepest:
            found.append((len(match.group(1)), match.group(2)))
    return found


def anchor(title: str) -> str:
    """
    The anchor GitHub (and MyST, with C{myst_heading_anchors}) gives a
    heading: lower case, punctuation out, spaces as hyphens.
    """
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def links(text: str) -> list[str]:
    """
    The targets of the Markdown links and images of C{text}, code left out.
    """
    prose = "\n".join(re.sub(r"`[^`]*`", "", line) for line in _outsideFences(text))
    return re.findall(r"\]\(([^)\s]+)\)", prose)


def test_contents_lists_every_section() -> None:
    """
    The README's Contents section links every other section (level 2), in
    order, and nothing else.
    """
    text = _readme()
    sections = [title for level, title in headings(text) if level == 2]
    assert "Contents" in sections
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^- \[(.*?)\]\(#([^)]+)\)", contents, flags=re.M)
    assert [title for title, _ in listed] == [title for title in sections if title != "Contents"]
    assert [target for _, target in listed] == [anchor(title) for title, _ in listed]


def test_links_resolve() -> None:
    """
    Every relative link of the README leads to a file or directory of the
    repository, and its C{#anchor}, if any, to a heading of that file (of
    the README itself for a bare C{#anchor}).
    """
    broken = []
    for target in links(_readme()):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, fragment = target.partition("#")
        file = ROOT / path if path else ROOT / README
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif fragment and fragment not in {anchor(title) for _, title in headings(file.read_text(encoding="utf-8"))}:
            broken.append(f"{target}: no such heading")
    assert broken == []


def test_links_every_documentation_page() -> None:
    """
    Each page of C{docs/} is linked from the README (but the changelog's
    wrapper: the README links C{CHANGELOG.md} itself), so a new page cannot
    be left out of the front page.
    """
    linked = {target.partition("#")[0] for target in links(_readme())}
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")} - {"docs/changelog.md"}
    assert sorted(pages - linked) == []


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
```console
$ python hello.py
hello from a file
$ printf 'one\\ntwo\\nthree\\n' \\
    | grep -v two
one
three
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
        ("run", "console", None, 60.0),
        ("run", "python", None, 60.0),
    ]
    assert found[0] == Block("sample.md", 5, "python", 'print("hello from a file")\n', "file", "hello.py")


def test_console_commands_and_their_output() -> None:
    """
    A console block's C{$ } lines are its commands (a trailing backslash
    continues one), the lines under each its expected output, which must
    show in that order among the lines printed.
    """
    code = "$ echo a \\\n  b\na b\n$ true\n\n$ seq 3\n1\n3\n"
    assert consoleCommands(code) == [("echo a \\\n  b", ["a b"]), ("true", []), ("seq 3", ["1", "3"])]
    assert missingOutput(["1", "3"], "1\n2\n3\n") == []
    assert missingOutput(["3", "1"], "1\n2\n3\n") == ["1"]
    assert missingOutput(["1", "4", "3"], "1\n2\n3\n") == ["4", "3"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- runnable -->\ntext\n", "right above a code fence"),
        ("<!-- runnable: loudly -->\n```sh\ntrue\n```\n", "unknown runnable option"),
        ("<!-- runnable -->\n```js\n1\n```\n", "cannot run a js block"),
        ("<!-- runnable -->\n```console\nhello\n$ echo hello\n```\n", "output before any command"),
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
        wrong = Block("sample.md", 120, "console", "$ echo one\ntwo\n")
        with pytest.raises(AssertionError, match=r"(?s)sample.md:120: output lacks 'two'.*one"):
            sample.play(wrong)
    assert sample.servers == []
