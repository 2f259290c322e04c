"""
L{txpulse.server.collector}: the garbage collector's tuning, and that a
closed connection leaves no cyclic garbage (what makes the tuning safe).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from txpulse.server.collector import DEFAULT_YOUNG_THRESHOLD, tuneCollector


def _inSubprocess(code: str) -> str:
    # The collector's settings are process-wide: never change this one's.
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_tune_collector_raises_the_young_threshold_and_freezes() -> None:
    out = _inSubprocess(
        "import gc\n"
        "from txpulse.server.collector import tuneCollector\n"
        "before = gc.get_threshold()\n"
        "after = tuneCollector()\n"
        "print(before, after, gc.get_freeze_count() > 0)\n"
    )
    assert out == f"(700, 10, 10) ({DEFAULT_YOUNG_THRESHOLD}, 10, 10) True"


def test_zero_keeps_cpython_settings() -> None:
    out = _inSubprocess(
        "import gc\n"
        "from txpulse.server.collector import tuneCollector\n"
        "print(tuneCollector(0), gc.get_freeze_count())\n"
    )
    assert out == "(700, 10, 10) 0"


def test_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative: -1"):
        tuneCollector(-1)


_CYCLES = """
import base64, gc, os, socket, sys, threading
from twisted.internet import reactor
from twisted.web.resource import Resource
from txpulse import WebSocketResource, WebSocketSite
from txpulse.demos.apps import EchoFactory

root = Resource()
root.putChild(b"echo", WebSocketResource(EchoFactory(), pingInterval=5.0))
port = reactor.listenTCP(0, WebSocketSite(root), interface="127.0.0.1")
address = port.getHost()
CLOSE = bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8])

def clients():
    for _ in range(50):
        s = socket.create_connection((address.host, address.port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /echo HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\n"
                   "Connection: Upgrade\\r\\nSec-WebSocket-Version: 13\\r\\n"
                   f"Sec-WebSocket-Key: {key}\\r\\n\\r\\n").encode())
        head = b""
        while b"\\r\\n\\r\\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        s.sendall(CLOSE)
        while s.recv(4096):
            pass
        s.close()
    reactor.callFromThread(reactor.callLater, 0.3, report)

def report():
    print(gc.collect())
    reactor.stop()

def start():
    gc.collect()
    gc.disable()
    threading.Thread(target=clients, daemon=True).start()

reactor.callWhenRunning(start)
reactor.run()
"""


def test_a_closed_connection_is_freed_without_the_cyclic_collector() -> None:
    """
    The wire lets go of the application, and the channel of the wire, when
    the connection ends: 50 connections opened, used and closed over
    loopback leave nothing for the cyclic collector (which, tuned to run
    less often, would otherwise hold closed connections longer).
    """
    assert _inSubprocess(_CYCLES).splitlines()[-1] == "0"


def test_the_plugin_tunes_at_start_and_names_its_option_in_errors() -> None:
    from twisted.python.usage import UsageError

    from txpulse.plugin.tap import Options, _CollectorService, makeService

    options = Options()
    with pytest.raises(UsageError, match="--gc-threshold: must not be negative: -3"):
        options.parseOptions(["--gc-threshold", "-3"])
    tuned = Options()
    tuned.parseOptions(["--listen", "tcp:0:interface=127.0.0.1"])
    assert tuned["gc-threshold"] == DEFAULT_YOUNG_THRESHOLD
    assert any(isinstance(s, _CollectorService) for s in makeService(tuned))
    untuned = Options()
    untuned.parseOptions(["--listen", "tcp:0:interface=127.0.0.1", "--gc-threshold", "0"])
    assert not any(isinstance(s, _CollectorService) for s in makeService(untuned))
