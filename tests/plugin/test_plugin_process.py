"""
The plugin as a user runs it: C{twistd -n txpulse} in a subprocess, talked
to over loopback.
"""

from __future__ import annotations

import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ..support.processes import TwistdServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TwistdServer]:
    """
    C{twistd -n txpulse} with a fast heartbeat and a short shutdown timeout;
    killed at teardown.
    """
    twistd = TwistdServer(tmp_path / "twistd.log", "--heartbeat", "0.1", "--shutdown-timeout", "3")
    twistd.start()
    try:
        yield twistd
    finally:
        twistd.kill()


def test_every_mount_answers(server: TwistdServer) -> None:
    """
    C{/} serves the page, C{/metrics} the metrics, C{/ws} heartbeats and
    replies, C{/echo} echoes text and bytes.
    """
    port = server.port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
        assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5, proxy=None) as ws:
        assert ws.recv(timeout=5) == "heartbeat 1"
        ws.send("hello")
        replies = [ws.recv(timeout=5) for _ in range(5)]
        assert "reply to hello" in replies
    with connect(f"ws://127.0.0.1:{port}/echo", open_timeout=5, proxy=None) as ws:
        ws.send("text")
        assert ws.recv(timeout=5) == "text"
        ws.send(b"\x00bytes")
        assert ws.recv(timeout=5) == b"\x00bytes"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as metrics:
        text = metrics.read().decode()
    assert 'txpulse_messages_received_total{path="/echo"} 2.0' in text


def test_sigterm_closes_websockets_with_1001_and_exits_0(server: TwistdServer) -> None:
    """
    On SIGTERM every open WebSocket receives close 1001 ("going away"), and
    twistd exits 0 once the close handshakes are done.
    """
    process, port = server.process, server.port
    assert process is not None
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5, proxy=None) as ws:
        assert ws.recv(timeout=5) == "heartbeat 1"
        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert process.wait(10) == 0
    output = server.output()
    assert "WebSocket closed" in output and "code=1001" in output, output
    assert os.name == "posix"
