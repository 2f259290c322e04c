"""
Runs the commands of a Markdown file (the README) as a reader would: the
code blocks marked runnable, in order, from the repository root, with the
virtualenv's commands first on C{PATH} (as after C{. .venv/bin/activate}).

A block is marked by an HTML comment on the line right above its fence
(invisible on GitHub and in the docs)::

    <!-- runnable -->                    run it; it must exit 0
    <!-- runnable: serve -->             start it in the background and wait
                                         until port 8080 accepts connections;
                                         it runs until the next serve block
                                         (the reader stops it with Ctrl-C to
                                         start another) or the end of the file
    <!-- runnable: file=echo.py -->      write the block to echo.py (in the
                                         directory the commands run in)
    <!-- runnable: timeout=120 -->       seconds allowed (default 60; for
                                         serve, to become ready)

Only C{sh}/C{shell}/C{bash}/C{console} blocks (run with C{bash -e}) and
C{python} blocks (run with the virtualenv's Python, from a file) are
runnable. In a C{console} block the lines that start with C{$ } are the
commands (a line ending with a backslash goes on on the next one) and the
lines under a command are its expected output: each must be a line of what
the command wrote to its standard output, in that order (other lines may come
in between), so a block shows what a reader will see and the test checks it::

    $ echo hello | txpulse-client ws://localhost:8080/echo --count 1
    hello
 Port 8080 in every block is replaced by a free port, so a run
never collides with a server already on 8080. The commands run in a scratch
directory holding links to every top-level entry of the repository (so
C{python echo.py} finds the file a previous block wrote, and
C{.venv/bin/twist web --path examples} works), and whatever they write there
goes away with it (a block never writes through those links: a file
block replaces a link of its name by a file of its own).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .net import accepts, free_port

ROOT = Path(__file__).resolve().parent.parent.parent

#: The marker comment, and the fence it must be right above.
_MARKER = re.compile(r"^<!--\s*runnable(?::(?P<options>[^>]*))?\s*-->\s*$")
_FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<language>[\w+-]*)")

SHELLS = {"sh", "shell", "bash", "console"}
DEFAULT_TIMEOUT = 60.0
_NOT_LINKED = {"twistd.pid", "twistd.log"}
PORT = "8080"


@dataclass(frozen=True)
class Block:
    """
    A runnable code block.

    @ivar line: the line number of its first line of code, in C{source}.
    @ivar mode: C{"run"}, C{"serve"} or C{"file"}.
    @ivar file: for C{mode="file"}, the name to write the block to.
    """

    source: str
    line: int
    language: str
    code: str
    mode: str = "run"
    file: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def where(self) -> str:
        return f"{self.source}:{self.line}"


def _options(text: str, source: str, line: int) -> dict[str, object]:
    options: dict[str, object] = {}
    for word in text.replace(",", " ").split():
        key, equals, value = word.partition("=")
        if not equals and key == "serve":
            options["mode"] = "serve"
        elif key == "file" and value:
            options["mode"], options["file"] = "file", value
        elif key == "timeout" and value:
            options["timeout"] = float(value)
        else:
            raise ValueError(f"{source}:{line}: unknown runnable option {word!r}")
    return options


def blocks(text: str, source: str = "README.md") -> list[Block]:
    """
    The runnable blocks of Markdown C{text}, in order.

    @raise ValueError: for a marker not followed by a fence, an unknown
        option, or a block in a language that cannot run.
    """
    lines = text.splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        marker = _MARKER.match(lines[index].strip())
        if marker is None:
            index += 1
            continue
        if index + 1 >= len(lines) or (fence := _FENCE.match(lines[index + 1])) is None:
            raise ValueError(f"{source}:{index + 1}: a runnable marker must be right above a code fence")
        options = _options(marker.group("options") or "", source, index + 1)
        language = fence.group("language").lower()
        if options.get("mode") != "file" and language not in SHELLS | {"python"}:
            raise ValueError(f"{source}:{index + 2}: cannot run a {language or 'plain'} block")
        end = index + 2
        while end < len(lines) and not lines[end].startswith(fence.group("fence")):
            end += 1
        code = "\n".join(lines[index + 2 : end]) + "\n"
        if language == "console" and options.get("mode") != "file":
            try:
                consoleCommands(code)
            except ValueError as error:
                raise ValueError(f"{source}:{index + 3}: {error}") from None
        found.append(Block(source, index + 3, language, code, **options))  # type: ignore[arg-type]
        index = end + 1
    return found


@dataclass
class Session:
    """
    Runs the blocks of one file in order, in C{directory}, against the servers
    its C{serve} blocks started.
    """

    directory: Path
    port: int = field(default_factory=free_port)
    servers: list[tuple[Block, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        """
        The environment of an activated virtualenv (the interpreter running
        the tests is the virtualenv's).
        """
        venv = Path(sys.executable).parent
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(venv), env.get("PATH", "")])
        env["VIRTUAL_ENV"] = str(venv.parent)
        env.pop("PYTHONHOME", None)
        return env

    def code(self, block: Block) -> str:
        return block.code.replace(PORT, str(self.port))

    def argv(self, block: Block) -> list[str]:
        if block.language == "console":
            code = "\n".join(command for command, _ in consoleCommands(self.code(block)))
            return ["bash", "-euo", "pipefail", "-c", code]
        if block.language in SHELLS:
            return ["bash", "-euo", "pipefail", "-c", self.code(block)]
        script = self.directory / f"_block_{block.line}.py"
        script.write_text(self.code(block), encoding="utf-8")
        return [str(Path(sys.executable).parent / "python"), script.name]

    def play(self, block: Block) -> None:
        """
        Run, write or start one block; raise C{AssertionError} (with the
        output) when it fails.
        """
        if block.mode == "file":
            assert block.file is not None
            target = self.directory / block.file
            if target.is_symlink():
                target.unlink()
            target.write_text(self.code(block), encoding="utf-8")
            return
        if block.mode == "serve":
            self._serve(block)
            return
        if block.language == "console" and block.mode == "run":
            for command, expected in consoleCommands(self.code(block)):
                self._run(block, ["bash", "-euo", "pipefail", "-c", command], expected)
            return
        self._run(block, self.argv(block))

    def _run(self, block: Block, argv: list[str], expected: list[str] | None = None) -> None:
        try:
            result = subprocess.run(
                argv,
                cwd=self.directory,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=block.timeout,
            )
        except subprocess.TimeoutExpired as expired:
            raise AssertionError(
                f"{block.where()}: still running after {block.timeout} s\n{_text(expired.stdout)}{_text(expired.stderr)}"
                f"{self.serverLogs()}"
            ) from None
        if result.returncode != 0:
            raise AssertionError(
                f"{block.where()}: exit {result.returncode}\n$ {shlex.join(argv)}\n"
                f"{_text(result.stdout)}{_text(result.stderr)}{self.serverLogs()}"
            )
        missing = missingOutput(expected or [], _text(result.stdout))
        if missing:
            raise AssertionError(
                f"{block.where()}: output lacks {missing[0]!r}\n$ {argv[-1]}\n"
                f"{_text(result.stdout)}{_text(result.stderr)}{self.serverLogs()}"
            )

    def _serve(self, block: Block) -> None:
        # One port: the reader stops the server running on it (Ctrl-C)
        # before starting the next one.
        self.stop()
        log = self.directory / f"_serve_{block.line}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                self.argv(block),
                cwd=self.directory,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.servers.append((block, process, log))
        deadline = time.monotonic() + block.timeout
        while not accepts(self.port):
            if process.poll() is not None:
                raise AssertionError(
                    f"{block.where()}: exited {process.returncode} before serving\n{self.serverLogs()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{block.where()}: port {PORT} not served within {block.timeout} s\n{self.serverLogs()}"
                )
            time.sleep(0.05)

    def serverLogs(self) -> str:
        return "".join(
            f"\n--- {block.where()} (server) ---\n{log.read_text(errors='replace')[-4000:]}"
            for block, _, log in self.servers
        )

    def stop(self) -> None:
        """
        Stop every server (SIGTERM to its process group, then SIGKILL).
        """
        for _, process, _ in reversed(self.servers):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.servers.clear()


def consoleCommands(code: str) -> list[tuple[str, list[str]]]:
    """
    The commands of a C{console} block and, for each, the output lines shown
    under it.

    @raise ValueError: for output shown before any command.
    """
    commands: list[tuple[str, list[str]]] = []
    continued = False
    for line in code.splitlines():
        if continued:
            command, expected = commands[-1]
            commands[-1] = (command + "\n" + line, expected)
        elif line.startswith("$ "):
            commands.append((line[2:], []))
        elif line.strip():
            if not commands:
                raise ValueError(f"output before any command: {line!r}")
            commands[-1][1].append(line.rstrip())
            continue
        continued = line.endswith("\\")
    return commands


def missingOutput(expected: list[str], output: str) -> list[str]:
    """
    The lines of C{expected} that C{output} does not show, in order: the
    first line not found, and every line after it.
    """
    lines = iter(line.rstrip() for line in output.splitlines())
    for index, wanted in enumerate(expected):
        if not any(line == wanted for line in lines):
            return expected[index:]
    return []


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


@contextmanager
def session(scratch: Path, root: Path = ROOT) -> Iterator[Session]:
    """
    A L{Session} in C{scratch}, which gets a link to every top-level entry of
    C{root}; its servers are stopped on exit.
    """
    for entry in root.iterdir():
        # A pidfile of a server running in the checkout would stop the
        # README's twistd ("Another twistd server is running").
        if entry.name not in _NOT_LINKED and not (scratch / entry.name).exists():
            (scratch / entry.name).symlink_to(entry)
    current = Session(scratch)
    try:
        yield current
    finally:
        current.stop()
