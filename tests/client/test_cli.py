"""
The C{txpulse-client} command line, run as a subprocess (C{python -m
txpulse.client} and the installed console script) against servers that
run in their own processes too: C{twistd -n txpulse} (the heartbeat demo
on C{/ws}, echo on C{/echo}; plain TCP and TLS with a CA made at test
time) and a small scripted server for closes, binary messages and
silence.

These tests are plain functions: the test process's reactor is not
involved, so every server is a separate process, started once per module
and killed at teardown. Every wait is bounded.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from txpulse.client.cli import CLI_DEFAULTS, buildParser, connectionSettings

from ..support.net import free_port, free_ports
from ..support.pki import PKI
from ..support.processes import ServerProcess, TwistdServer, script

#: How long one client run may take (they normally take well under 1 s).
RUN = 10.0


# -- server processes --------------------------------------------------------------------


@dataclass
class Demo:
    """
    C{twistd -n txpulse} serving plain TCP and TLS.
    """

    port: int
    tlsPort: int
    pki: PKI
    log: Path

    def url(self, path: str = "/ws") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def closes(self, code: int, path: str = "/ws") -> int:
        """
        How many connections to C{path} the server has logged as closed by
        the client with C{code} so far.
        """
        return self.log.read_text(errors="replace").count(f" {path} code={code} ")

    def waitForClose(self, code: int, before: int, path: str = "/ws") -> None:
        """
        Wait (bounded) until the server logs one more close with C{code}
        than C{before}.
        """
        deadline = time.monotonic() + 5.0
        while self.closes(code, path) <= before:
            assert time.monotonic() < deadline, f"the server logged no close {code}:\n{self.log.read_text()[-2000:]}"
            time.sleep(0.05)

    def tlsURL(self, path: str = "/ws", host: str = "127.0.0.1") -> str:
        return f"wss://{host}:{self.tlsPort}{path}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[Demo]:
    """
    One C{twistd -n txpulse --heartbeat 0.1} process for the module,
    listening on a free plain port and a free TLS port (certificate from
    L{pki}, for 127.0.0.1).
    """
    port, tlsPort = free_ports(2)
    tls = f"ssl:{tlsPort}:privateKey={pki.keyFile}:certKey={pki.certFile}:interface=127.0.0.1"
    log = tmp_path_factory.mktemp("twistd") / "server.log"
    server = TwistdServer(log, "--listen", tls, "--heartbeat", "0.1", port=port, morePorts=[tlsPort])
    server.start()
    try:
        yield Demo(port, tlsPort, pki, log)
    finally:
        server.stop()


SCRIPTED_SERVER = '''
"""
Test server: /close closes with 4001 "go away" as soon as it opens, /bye
with 1001 "restarting", /binary sends two binary messages; a second port
accepts TCP and never answers. Usage: server.py WEB-PORT SILENT-PORT.
"""
import sys

from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.web.resource import Resource
from twisted.web.server import Site

from txpulse import WebSocketResource


class App:
    def __init__(self, opened):
        self.opened = opened

    def negotiationStarted(self, transport):
        self.transport = transport

    def negotiationFinished(self):
        self.opened(self.transport)

    def textMessageReceived(self, message):
        pass

    def bytesMessageReceived(self, data):
        pass

    def pongReceived(self, payload):
        pass

    def connectionLost(self, reason):
        pass


class AppFactory:
    def __init__(self, opened):
        self.opened = opened

    def buildProtocol(self, request):
        return App(self.opened)


def binary(transport):
    transport.sendBytesMessage(bytes(range(20)))
    transport.sendBytesMessage(b"\\x00\\x01\\xff")


root = Resource()
root.putChild(b"close", WebSocketResource(AppFactory(lambda t: t.loseConnection(4001, "go away")), pingInterval=None))
root.putChild(b"bye", WebSocketResource(AppFactory(lambda t: t.loseConnection(1001, "restarting")), pingInterval=None))
root.putChild(b"binary", WebSocketResource(AppFactory(binary), pingInterval=None))
web, silent = (int(port) for port in sys.argv[1:])
reactor.listenTCP(web, Site(root), interface="127.0.0.1")
reactor.listenTCP(silent, Factory.forProtocol(Protocol), interface="127.0.0.1")
reactor.run()
'''


@dataclass
class Scripted:
    port: int
    silentPort: int

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scripted]:
    """
    The L{SCRIPTED_SERVER} in its own process for the module.
    """
    directory = tmp_path_factory.mktemp("scripted")
    source = directory / "server.py"
    source.write_text(SCRIPTED_SERVER)
    ports = free_ports(2)
    server = ServerProcess([sys.executable, str(source), *map(str, ports)], directory / "server.log", ports)
    server.start()
    try:
        yield Scripted(*ports)
    finally:
        server.stop()


# -- running the client ------------------------------------------------------------------


def client_command(via: str) -> list[str]:
    """
    How to run the client: C{"module"} is C{python -m txpulse.client},
    C{"script"} the installed C{txpulse-client}.
    """
    if via == "module":
        return [sys.executable, "-m", "txpulse.client"]
    return [script("txpulse-client")]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def errorLines(self) -> list[str]:
        return self.stderr.splitlines()


def run(
    args: Sequence[str],
    *,
    via: str = "script",
    input: str | None = None,
    cwd: Path | None = None,
    devnull: bool = False,
) -> Result:
    """
    Run the client to completion (bounded by L{RUN}). Without C{input},
    stdin is a pipe kept open (never written, closed only at the end), so
    end-of-stdin does not close the connection; with C{devnull}, stdin is
    C{/dev/null}, at its end from the start (cron, CI, systemd).
    """
    started = time.monotonic()
    process = subprocess.Popen(
        [*client_command(via), *args],
        stdin=subprocess.DEVNULL if devnull else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
    )
    try:
        if input is not None:
            out, err = process.communicate(input.encode(), timeout=RUN)
        else:
            # Keep stdin open: wait for the exit first, then collect output.
            process.wait(RUN)
            out, err = process.communicate(timeout=RUN)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the client did not exit within {RUN}s: {args}\nstdout: {out!r}\nstderr: {err!r}")
    return Result(process.returncode, out.decode(), err.decode(), time.monotonic() - started)


def one_error_line(result: Result) -> str:
    """
    The client's stderr must be exactly one line, without a traceback;
    return it.
    """
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.errorLines) == 1, result.stderr
    line = result.errorLines[0]
    assert line.startswith("txpulse-client: "), line
    return line


# -- receiving ------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["module", "script"])
def test_count_prints_exactly_that_many_heartbeats_and_exits_0(demo: Demo, via: str) -> None:
    """
    C{--count 3} on the heartbeat demo prints exactly three lines,
    C{heartbeat 1} to C{heartbeat 3}, and exits 0 (stdin stays open).
    """
    result = run([demo.url("/ws"), "--count", "3"], via=via)
    assert result.returncode == 0, result.stderr
    assert result.lines == ["heartbeat 1", "heartbeat 2", "heartbeat 3"]
    assert "Traceback" not in result.stderr
    assert result.elapsed < 5.0


def test_stdin_line_is_sent_and_echo_printed(demo: Demo) -> None:
    """
    A line written to stdin goes out as a text message; on C{/echo} it
    comes back and is printed; end of stdin then closes normally (exit 0).
    """
    result = run([demo.url("/echo")], via="module", input="hello from stdin\nsecond line ✓\n")
    assert result.returncode == 0, result.stderr
    assert result.lines == ["hello from stdin", "second line ✓"]
    assert "Traceback" not in result.stderr


def test_stdin_line_gets_reply_from_heartbeat_demo(demo: Demo) -> None:
    """
    On C{/ws}, a line from stdin is answered with C{reply to <line>},
    printed among the heartbeats.
    """
    result = run([demo.url("/ws"), "--count", "1"], input="ping me\n", via="script")
    assert result.returncode == 0, result.stderr
    assert result.lines in (["reply to ping me"], ["heartbeat 1"])  # whichever arrives first
    result = run([demo.url("/ws"), "--count", "4", "--keep-open"], input="ping me\n")
    assert "reply to ping me" in result.lines
    assert [line for line in result.lines if line.startswith("heartbeat")] == [
        f"heartbeat {n}" for n in range(1, len(result.lines))
    ]


def test_json_prints_one_object_per_message(demo: Demo) -> None:
    """
    C{--json} prints one JSON object per line with C{type}, C{size},
    C{time} (seconds since the epoch) and C{data}.
    """
    before = time.time()
    result = run([demo.url("/ws"), "--count", "2", "--json"], via="module")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.lines]
    assert [r["data"] for r in records] == ["heartbeat 1", "heartbeat 2"]
    for record in records:
        assert record["type"] == "text"
        assert record["size"] == len(record["data"].encode())
        assert before - 1 <= record["time"] <= time.time() + 1
    assert records[0]["time"] <= records[1]["time"]


def test_binary_messages_print_as_marked_short_lines(scripted: Scripted) -> None:
    """
    Binary messages print as one clearly marked line with the size and the
    first bytes in hex; with C{--json} as type C{binary}, base64 data.
    """
    result = run([scripted.url("/binary"), "--count", "2"])
    assert result.returncode == 0, result.stderr
    assert len(result.lines) == 2
    first, second = result.lines
    assert first.startswith("[binary 20 bytes: 00 01 02 03") and first.endswith("]")
    assert second.startswith("[binary 3 bytes: 00 01 ff") and second.endswith("]")
    result = run([scripted.url("/binary"), "--count", "2", "--json"])
    records = [json.loads(line) for line in result.lines]
    assert [(r["type"], r["size"]) for r in records] == [("binary", 20), ("binary", 3)]
    assert base64.b64decode(records[0]["data"]) == bytes(range(20))
    assert base64.b64decode(records[1]["data"]) == b"\x00\x01\xff"


def test_reading_three_lines_then_closing_the_pipe_exits_promptly(demo: Demo, tmp_path: Path) -> None:
    """
    C{txpulse-client URL | head -3}: the first three heartbeats come out
    at once, and when C{head} exits the client ends promptly, with exit 0
    and no traceback or broken-pipe noise.
    """
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    errors = tmp_path / "stderr.txt"
    command = f"set -o pipefail; '{script('txpulse-client')}' --keep-open '{demo.url('/ws')}' </dev/null 2>'{errors}' | head -3"
    started = time.monotonic()
    completed = subprocess.run([bash, "-c", command], capture_output=True, timeout=RUN)
    elapsed = time.monotonic() - started
    assert completed.stdout.decode().splitlines() == ["heartbeat 1", "heartbeat 2", "heartbeat 3"]
    assert completed.returncode == 0, errors.read_text()
    assert elapsed < 4.0
    stderr = errors.read_text()
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_closing_stdout_pipe_early_ends_the_client(demo: Demo) -> None:
    """
    A reader that takes three lines then closes its end of the pipe makes
    the client exit (0) within a second, without a traceback.
    """
    process = subprocess.Popen(
        [*client_command("module"), demo.url("/ws")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().decode().strip() for _ in range(3)]
        assert lines == ["heartbeat 1", "heartbeat 2", "heartbeat 3"]
        process.stdout.close()
        closedAt = time.monotonic()
        process.wait(RUN)
        assert time.monotonic() - closedAt < 1.5
        assert process.returncode == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_server_closing_normally_exits_0(scripted: Scripted) -> None:
    """
    A server closing with 1001 ("going away") is a normal end: exit 0,
    the close is reported as a status line.
    """
    result = run([scripted.url("/bye")])
    assert result.returncode == 0, result.stderr
    assert "1001" in result.stderr and "restarting" in result.stderr
    assert "Traceback" not in result.stderr


# -- wss:// -------------------------------------------------------------------------


# -- stdin at its end (cron, CI, systemd) ---------------------------------------------------


def test_count_with_stdin_at_its_end_waits_for_n_messages(demo: Demo) -> None:
    """
    C{txpulse-client URL --count 3 </dev/null}: the end of stdin does not
    end the session; the three heartbeats are printed, then the client
    closes with 1000 and exits 0.
    """
    before = demo.closes(1000)
    result = run([demo.url("/ws"), "--count", "3"], devnull=True)
    assert result.returncode == 0, result.stderr
    assert result.lines == ["heartbeat 1", "heartbeat 2", "heartbeat 3"]
    assert "Traceback" not in result.stderr
    demo.waitForClose(1000, before)


def test_count_server_closing_first_exits_1(scripted: Scripted) -> None:
    """
    With C{--count 3} and stdin at its end, a server that closes (even with
    1001) before three messages is an early end: exit 1, and the error line
    says how many messages came.
    """
    result = run([scripted.url("/bye"), "--count", "3", "--quiet"], devnull=True)
    assert result.returncode == 1, result.stderr
    assert one_error_line(result) == "txpulse-client: closed by server: 1001 (restarting) after 0 of 3 messages"
    assert result.lines == []


def test_stdin_at_its_end_without_count_closes_with_1000_and_exits_0(demo: Demo) -> None:
    """
    Without C{--count} (or C{--keep-open}), the end of stdin ends the
    session: the client closes with 1000 and exits 0.
    """
    before = demo.closes(1000)
    result = run([demo.url("/ws")], devnull=True)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.elapsed < 5.0
    demo.waitForClose(1000, before)


# -- stopping: SIGINT (Ctrl-C) and SIGTERM, from a pipe and from a terminal ----------------


def read_until(fd: int, wanted: bytes, timeout: float = 5.0) -> bytes:
    """
    Read from C{fd} until C{wanted} has arrived (bounded); return all read.
    """
    data = b""
    deadline = time.monotonic() + timeout
    while wanted not in data:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{wanted!r} not read within {timeout}s: {data!r}"
        if select.select([fd], [], [], remaining)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: a pty whose other end is closed
                chunk = b""
            assert chunk, f"end of output before {wanted!r}: {data!r}"
            data += chunk
    return data


def read_to_end(fd: int, timeout: float = 5.0) -> bytes:
    """
    Read from C{fd} until its end (bounded); return all read.
    """
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], deadline - time.monotonic())[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def wait_exit(process: subprocess.Popen[bytes]) -> int:
    """
    The exit status of C{process}, which must exit within a few seconds.
    """
    try:
        return process.wait(5.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("the client did not exit within 5s of the signal")


def assert_quiet(stderr: str) -> None:
    """
    Stopping the client writes no traceback and no false blame.
    """
    assert "Traceback" not in stderr and "Unhandled" not in stderr, stderr
    assert "ReactorNotRunning" not in stderr and "closed by server" not in stderr, stderr
    assert "txpulse-client:" not in stderr, stderr


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_with_stdin_on_a_pipe_closes_1001_and_exits_quietly(
    demo: Demo, signum: signal.Signals, status: int
) -> None:
    """
    SIGINT or SIGTERM with stdin on an open pipe: the client closes with
    1001 (going away), which the server sees, and exits 128 + the signal
    (130, 143) with no traceback and no C{closed by server} line.
    """
    before = demo.closes(1001)
    process = subprocess.Popen(
        [*client_command("script"), demo.url("/ws")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        read_until(process.stdout.fileno(), b"heartbeat 2\n")
        process.send_signal(signum)
        assert wait_exit(process) == status
        assert_quiet(process.stderr.read().decode())
        demo.waitForClose(1001, before)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _controllingTerminal() -> None:
    """
    In the child, after C{setsid}: make stdin (the pty) the controlling
    terminal, so that Ctrl-C typed on it sends SIGINT.
    """
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.mark.parametrize(("keys", "signum", "status"), [(b"\x03", None, 130), (b"", signal.SIGTERM, 143)])
def test_stopping_from_a_terminal_closes_1001_and_exits_quietly(
    demo: Demo, keys: bytes, signum: signal.Signals | None, status: int
) -> None:
    """
    The client on a terminal (a pty for stdin and stdout): Ctrl-C typed on
    it, or SIGTERM, closes with 1001 and exits 130 (143) with no traceback.
    """
    before = demo.closes(1001)
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [*client_command("script"), demo.url("/ws")],
            stdin=slave,
            stdout=slave,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_controllingTerminal,
        )
    finally:
        os.close(slave)
    try:
        assert process.stderr is not None
        read_until(master, b"heartbeat 2")
        if keys:
            os.write(master, keys)
        else:
            assert signum is not None
            process.send_signal(signum)
        assert wait_exit(process) == status
        output = read_to_end(master, 1.0).decode(errors="replace")
        assert "Traceback" not in output, output
        assert_quiet(process.stderr.read().decode())
        demo.waitForClose(1001, before)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
        if process.stderr is not None:
            process.stderr.close()


# -- TLS ---------------------------------------------------------------------------------


def test_wss_with_cafile_works(demo: Demo) -> None:
    """
    Against the TLS listener, C{--cafile ca.pem} (the CA that signed the
    server's certificate) verifies it and the heartbeats arrive.
    """
    result = run([demo.tlsURL(), "--cafile", str(demo.pki.caFile), "--count", "2"])
    assert result.returncode == 0, result.stderr
    assert result.lines == ["heartbeat 1", "heartbeat 2"]


def test_wss_insecure_works(demo: Demo) -> None:
    """
    C{--insecure} skips verification and connects to the same server.
    """
    result = run([demo.tlsURL(), "--insecure", "--count", "1"])
    assert result.returncode == 0, result.stderr
    assert result.lines == ["heartbeat 1"]


def test_wss_untrusted_certificate_exits_4(demo: Demo) -> None:
    """
    Without C{--cafile} the test CA is not trusted: one line mentioning
    the certificate verification failure, exit 4.
    """
    result = run([demo.tlsURL(), "--count", "1"])
    line = one_error_line(result)
    assert result.returncode == 4
    assert "TLS" in line and "certificate verify failed" in line
    assert result.stdout == ""


def test_wss_host_name_mismatch_exits_4(demo: Demo) -> None:
    """
    A certificate from the trusted CA but not for the host in the URL
    (it names 127.0.0.1; the URL says localhost) is a TLS verification
    failure too: one line, exit 4.
    """
    result = run([demo.tlsURL(host="localhost"), "--cafile", str(demo.pki.caFile), "--count", "1"])
    line = one_error_line(result)
    assert result.returncode == 4, line
    assert "localhost" in line


# -- errors ---------------------------------------------------------------------------


def test_bad_url_exits_2() -> None:
    """
    A URL that is not ws://, wss://, http:// or https:// is a usage
    error: one line, exit 2.
    """
    result = run(["ftp://x"])
    line = one_error_line(result)
    assert result.returncode == 2
    assert "ftp://x" in line


def test_http_url_is_taken_as_ws(demo: Demo) -> None:
    """
    An http:// URL connects as ws:// would (the endpoint takes http:// and
    https:// as ws:// and wss://, like Twisted's endpoint and browsers).
    """
    result = run([demo.url().replace("ws://", "http://", 1), "--count", "1"])
    assert result.returncode == 0, result.stderr
    assert result.lines == ["heartbeat 1"]


def test_module_invocation_prints_nothing_but_the_error() -> None:
    """
    C{python -m txpulse.client} reports an error with the same single
    line as the console script: no interpreter warning (such as runpy's
    "found in sys.modules" warning) is written to stderr.
    """
    result = run(["ftp://x"], via="module")
    assert result.returncode == 2
    assert result.errorLines == [
        "txpulse-client: not a WebSocket URL (ws://, wss://, http:// or https://): 'ftp://x'"
    ], result.stderr


def test_connection_refused_exits_3() -> None:
    """
    Nothing listening on the port: one line saying the connection was
    refused, exit 3.
    """
    url = f"ws://127.0.0.1:{free_port()}/ws"
    result = run([url])
    line = one_error_line(result)
    assert result.returncode == 3
    assert "refused" in line


def test_dns_failure_exits_3() -> None:
    """
    A host name that does not resolve: one line naming the problem, exit 3.
    """
    result = run(["ws://no-such-host.invalid/"])
    line = one_error_line(result)
    assert result.returncode == 3
    assert "resolve" in line and "no-such-host.invalid" in line


def test_handshake_timeout_exits_3(scripted: Scripted) -> None:
    """
    A server that accepts TCP but never answers the upgrade: after
    C{--timeout}, one "timed out" line, exit 3.
    """
    result = run([f"ws://127.0.0.1:{scripted.silentPort}/", "--timeout", "0.5"])
    line = one_error_line(result)
    assert result.returncode == 3
    assert "timed out" in line
    assert result.elapsed < 5.0


def test_status_and_error_lines_redact_the_token(demo: Demo) -> None:
    """
    A C{ws_token} in the URL never reaches the terminal: the "connected to"
    status line and a connection error show C{ws_token=[REDACTED]}, and a
    malformed C{Authorization} header is not echoed with its key.
    """
    secret = "eyJhbGciOiJBMjU2S1ciLCJjdHkiOiJKV1QifQ.c2VjcmV0LXRva2Vu"
    result = run([demo.url(f"/ws?ws_token={secret}&x=1"), "--count", "1"])
    assert result.returncode == 0, result.stderr
    assert f"connected to {demo.url('/ws?ws_token=[REDACTED]&x=1')}" in result.stderr
    refused = run([f"ws://127.0.0.1:{free_port()}/ws?ws_token={secret}"])
    assert refused.returncode == 3 and "ws_token=[REDACTED]" in one_error_line(refused)
    malformed = run([demo.url(), "--header", f"Authorization Bearer {secret}"])
    assert malformed.returncode == 2 and "Bearer [REDACTED]" in one_error_line(malformed)
    for output in (result, refused, malformed):
        assert secret not in output.stderr and "c2VjcmV0LXRva2Vu" not in output.stderr


def test_handshake_refused_exits_5_and_shows_status(demo: Demo) -> None:
    """
    A path with no WebSocket resource (C{/nope}, 404): one line with the
    status, exit 5.
    """
    result = run([demo.url("/nope")])
    line = one_error_line(result)
    assert result.returncode == 5
    assert "404" in line


def test_server_closing_with_error_code_exits_1(scripted: Scripted) -> None:
    """
    A server closing with 4001 "go away": exit 1 and one error line
    showing the code and the reason (with C{--quiet}, the only line; without
    it, after the "connected" status line).
    """
    result = run([scripted.url("/close"), "--quiet"])
    line = one_error_line(result)
    assert result.returncode == 1
    assert "4001" in line and "go away" in line
    verbose = run([scripted.url("/close")])
    assert verbose.returncode == 1
    assert verbose.errorLines[-1] == line
    assert [x for x in verbose.errorLines if x.startswith("txpulse-client:")] == [line]


def test_bad_header_option_exits_2() -> None:
    """
    A C{--header} without a colon is a usage error: one line, exit 2.
    """
    result = run(["ws://127.0.0.1:1/", "--header", "no colon here"])
    line = one_error_line(result)
    assert result.returncode == 2
    assert "--header" in line


# -- --reconnect -------------------------------------------------------------------------


@dataclass
class ReconnectRun:
    stillRunning: bool
    lines: list[str]
    stderr: str


@pytest.fixture(scope="module")
def reconnect_run() -> ReconnectRun:
    """
    C{--reconnect} against a closed port for 3 seconds (the default
    backoff retries after 1.5 to 2.5 s, so at least two attempts), then
    terminated.
    """
    process = subprocess.Popen(
        [*client_command("script"), f"ws://127.0.0.1:{free_port()}/ws", "--reconnect"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    collected = b""
    deadline = time.monotonic() + 3.0
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([process.stderr], [], [], remaining)
            if ready:
                chunk = os.read(process.stderr.fileno(), 65536)
                if not chunk:
                    break
                collected += chunk
        stillRunning = process.poll() is None
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    stderr = collected.decode(errors="replace")
    lines = [line for line in stderr.splitlines() if line.strip()]
    return ReconnectRun(stillRunning, lines, stderr)


def test_reconnect_keeps_retrying_and_reports_attempts(reconnect_run: ReconnectRun) -> None:
    """
    With C{--reconnect}, a refused connection is not fatal: the client
    keeps retrying with backoff, writing status lines on stderr (at least
    two within 3 s) and no traceback.
    """
    assert reconnect_run.stillRunning, reconnect_run.stderr
    assert len(reconnect_run.lines) >= 2, reconnect_run.stderr
    assert "Traceback" not in reconnect_run.stderr
    assert any("refused" in line for line in reconnect_run.lines), reconnect_run.stderr


def test_reconnect_prints_one_status_line_per_attempt(reconnect_run: ReconnectRun) -> None:
    """
    Each attempt is reported on one status line that says how it ended
    (here: refused), rather than a "connecting" line plus a separate
    outcome line.
    """
    assert len(reconnect_run.lines) >= 2, reconnect_run.stderr
    assert all("refused" in line for line in reconnect_run.lines), reconnect_run.stderr


# -- connection settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "changes"),
    [
        ([], {}),
        (["--timeout", "3"], {"handshakeTimeout": 3.0}),
        (["--timeout", "3", "--handshake-timeout", "7"], {"handshakeTimeout": 7.0}),
        (["--ping-interval", "5"], {"pingInterval": 5.0, "pingTimeout": 5.0}),
        (["--ping-interval", "5", "--ping-timeout", "2"], {"pingInterval": 5.0, "pingTimeout": 2.0}),
        (["--ping-interval", "0"], {}),
        (["--subprotocol", "v2", "--subprotocol", "v1", "--deflate"], {"subprotocols": ("v2", "v1"), "compression": True}),
        (["--idle-timeout", "30", "--max-frame-size", "64K", "--max-message-size", "1M"],
         {"idleTimeout": 30.0, "maxFrameSize": 64 << 10, "maxMessageSize": 1 << 20}),
    ],
)  # fmt: skip
def test_flags_build_the_connection_settings(argv: list[str], changes: dict[str, object]) -> None:
    """
    The connection flags are generated from L{ConnectionSettings}: the ones
    given override the CLI's defaults (a client's, without a message size
    limit); C{--timeout} bounds the handshake too unless
    C{--handshake-timeout} is given; C{--ping-interval S} alone gives a
    silent server S more seconds after the ping.
    """
    assert CLI_DEFAULTS.maxMessageSize is None and CLI_DEFAULTS.pingInterval is None
    settings = connectionSettings(buildParser().parse_args(["ws://x/", *argv]))
    assert settings == CLI_DEFAULTS.override(**changes)


def test_bad_setting_flag_exits_2_naming_it() -> None:
    """
    A bad connection setting on the command line is a usage error (exit 2)
    whose line names the flag.
    """
    result = run(["ws://127.0.0.1:1/", "--ping-interval", "-3"])
    assert result.returncode == 2
    assert "argument --ping-interval: must not be negative: -3" in result.stderr


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--count", "0"], "argument -n/--count: must be positive: 0"),
        (["--timeout", "-1"], "argument --timeout: must not be negative: -1"),
        (["--idle-timeout", "nan"], "argument --idle-timeout: not a number of seconds: 'nan'"),
        (["--max-frame-size", "abc"], "argument --max-frame-size: not a size in bytes"),
        (["--handshake-timeout", "0"], "argument --handshake-timeout: must be positive: 0"),
        (["--cafile", "/nonexistent/ca.pem"], "--cafile: cannot read /nonexistent/ca.pem: No such file or directory"),
    ],
)
def test_every_option_error_names_the_option(argv: list[str], line: str) -> None:
    """
    Each bad option value is a usage error (exit 2) in one line that names
    the option, and no connection is attempted.
    """
    result = run(["wss://127.0.0.1:1/", *argv], devnull=True)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert line in result.stderr
    assert "connection refused" not in result.stderr


def test_cafile_without_certificates_is_an_error_naming_it(tmp_path: Path) -> None:
    """
    A C{--cafile} that holds no PEM certificate is a usage error naming
    C{--cafile}.
    """
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    result = run(["wss://127.0.0.1:1/", "--cafile", str(empty)], devnull=True)
    assert result.returncode == 2
    assert one_error_line(result) == f"txpulse-client: --cafile: no PEM certificate in {empty}"


# -- the client example -----------------------------------------------------------------


def test_client_example_without_a_server_says_so_in_one_line() -> None:
    """
    examples/websocket-client.py with nothing listening prints
    C{connecting...}, then one line on stderr saying it could not connect
    (no C{ConnectionRefusedError} traceback), and exits 1.
    """
    example = Path(__file__).resolve().parents[2] / "examples" / "websocket-client.py"
    url = f"ws://127.0.0.1:{free_port()}/websocket-server.rpy"
    completed = subprocess.run([sys.executable, str(example), url], capture_output=True, text=True, timeout=RUN)
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout.splitlines() == ["connecting..."]
    assert "Traceback" not in completed.stderr
    [line] = completed.stderr.splitlines()
    assert line.startswith(f"could not connect to {url}: Connection was refused"), line


def test_reconnect_after_the_server_closes_prints_one_line_per_reconnection(scripted: Scripted) -> None:
    """
    With C{--reconnect}, a server that closes (here 1001 "restarting" as
    soon as the WebSocket opens) is reconnected with backoff: each
    connection is one C{connected to} line and each close one
    C{closed by server: ...; reconnecting in ...} line. SIGINT while
    waiting to reconnect exits 130 quietly.
    """
    url = scripted.url("/bye")
    process = subprocess.Popen(
        [*client_command("script"), url, "--reconnect"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(2.5)  # the first reconnection comes after 0.5 to 1.5 s
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=RUN)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    lines = err.decode().splitlines()
    assert process.returncode == 130, err
    assert "Traceback" not in err.decode(), err
    assert out == b""
    assert len(lines) >= 3, lines
    assert lines[0] == f"connected to {url}", lines
    for index, line in enumerate(lines):
        if index % 2 == 0:
            assert line == f"connected to {url}", lines
        else:
            assert re.fullmatch(r"closed by server: 1001 \(restarting\); reconnecting in \d+\.\ds", line), lines
