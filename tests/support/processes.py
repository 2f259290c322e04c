"""
Servers in subprocesses, above all C{twistd -n txpulse} as a user runs it:
started with their output in a log file, waited for until they are ready
(by default: until each of their loopback ports accepts connections),
stopped with SIGTERM, and their log shown when any of that goes wrong.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import pytest

from .net import accepts, free_port


def script(name: str) -> str:
    """
    The console script C{name} of the virtualenv running the tests (where
    C{make install} put txpulse), else the one on C{PATH}.
    """
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found beside the interpreter or on PATH (run `make install`)")
    return found


def rss(pid: int) -> int:
    """
    The resident set size of process C{pid}, in bytes (C{VmRSS} of
    C{/proc/PID/status}: Linux only).

    @raise AssertionError: when the status has no C{VmRSS} (e.g. a zombie).
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


class ServerProcess:
    """
    A server in a subprocess, its output appended to C{log}; it can be
    stopped and started again (on the same ports). As a context manager,
    started on entry and stopped on exit.

    @ivar ports: the loopback ports it listens on once started.
    @ivar process: the running process, or C{None}.
    """

    #: Seconds allowed to become ready, or to exit after SIGTERM.
    timeout = 15.0

    def __init__(self, argv: Sequence[str], log: Path, ports: Sequence[int] = (), *, cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.log = log
        self.ports = list(ports)
        self.cwd = cwd if cwd is not None else log.parent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        """
        The executable's name, for messages.
        """
        return Path(self.argv[0]).name

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def ready(self) -> bool:
        """
        Whether the server is ready: each of its ports accepts connections.
        """
        return all(accepts(port) for port in self.ports)

    def start(self) -> None:
        """
        Start the process and wait until it is L{ready}; fail the test, with
        the end of the log, if it exits first or takes too long.
        """
        assert self.process is None, "already running"
        with self.log.open("ab") as log:
            log.write(f"\n$ {shlex.join(self.argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.timeout
        while not self.ready():
            if self.process.poll() is not None:
                self.process = None
                pytest.fail(f"{self.name} exited early:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"{self.name} was not ready within {self.timeout} s:\n{self.log_tail()}")
            time.sleep(0.02)

    def stop(self) -> int | None:
        """
        SIGTERM, then wait (SIGKILL, and fail the test, after L{timeout});
        returns the exit status (C{None} if it was not running).
        """
        process, self.process = self.process, None
        if process is None:
            return None
        process.terminate()
        try:
            return process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"{self.name} ignored SIGTERM for {self.timeout} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """
        SIGKILL: gone without a goodbye (idempotent).
        """
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()

    def restart(self, *, kill: bool = False) -> None:
        """
        Stop (L{stop}: SIGTERM; or L{kill}, with C{kill}: a crash) and start
        again with the same command line, so on the same ports.
        """
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def output(self) -> str:
        """
        Everything the process (and its earlier runs) wrote.
        """
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def log_tail(self, lines: int = 40) -> str:
        """
        The last C{lines} lines of L{output}, for failure messages.
        """
        return "\n".join(self.output().splitlines()[-lines:])


class TwistdServer(ServerProcess):
    """
    C{twistd -n txpulse} listening on one loopback port (a free one unless
    given), with any further C{options} of the plugin (more C{--listen}
    ports go in C{morePorts}, to be waited for too).

    @ivar url: the C{http://} URL of its root.
    """

    def __init__(self, log: Path, *options: str, port: int | None = None, morePorts: Sequence[int] = ()) -> None:
        self.port = port if port is not None else free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        argv = [script("twistd"), "--pidfile=", "-n", "txpulse", "--listen", f"tcp:{self.port}:interface=127.0.0.1"]
        super().__init__([*argv, *options], log, [self.port, *morePorts])
