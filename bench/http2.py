"""
WebSockets over HTTP/2 (RFC 8441) against WebSockets over HTTP/1.1, side by
side, in one sitting: N WebSockets from one client to ``twistd -n txpulse``
over TLS (the server pinned to core 0, the client to core 1 when ``taskset``
is there), opened with ``WebSocketClientEndpoint(http2=True)`` (streams of
shared HTTP/2 connections: 100 per connection, the server's
``MAX_CONCURRENT_STREAMS``) or ``http2=False`` (one TCP+TLS connection
each).

Measured per mode: the time to open all N (``--batch`` at a time), the
server's RSS growth per WebSocket once they are open, and an echo of 32-byte
messages (``--echo-sockets`` WebSockets, each with one message in flight,
for ``--seconds``); the client is Python on the reactor, so the echo figure
is a client-bound comparison of the two transports, not the server's
ceiling (``bench/run.py`` measures that, with the C load generator).

    .venv/bin/python bench/http2.py                 # N=1000, results in bench/results/http2.json
    .venv/bin/python bench/http2.py --count 200 --seconds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def start_server(pki: Any, port: int, log: Path) -> subprocess.Popen[bytes]:
    twistd = str(Path(sys.executable).with_name("twistd"))
    listen = f"ssl:{port}:interface=127.0.0.1:privateKey={pki.keyFile}:certKey={pki.certFile}"
    argv = [twistd, "--pidfile=", "-n", "txpulse", "--listen", listen, "--max-connections-per-address", "0"]
    argv += ["--no-metrics", "--gc-threshold", "0"]
    if shutil.which("taskset"):
        argv = ["taskset", "-c", "0", *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}")


async def measure(
    reactor: Any, url: str, caFile: str, http2: bool, options: argparse.Namespace, pid: int
) -> dict[str, Any]:
    from twisted.internet.defer import Deferred, gatherResults

    from txpulse import WebSocketClientEndpoint
    from txpulse.client.http2 import HTTP2Pool

    class Echoes:
        def __init__(self) -> None:
            self.transport: Any = None
            self.count = 0
            self.running = False

        def negotiationStarted(self, transport: Any) -> None:
            self.transport = transport

        def negotiationFinished(self) -> None:
            pass

        def textMessageReceived(self, text: str) -> None:
            self.count += 1
            if self.running:
                self.transport.sendTextMessage(text)

        def bytesMessageReceived(self, data: bytes) -> None:
            pass

        def pongReceived(self, payload: bytes) -> None:
            pass

        def connectionLost(self, reason: Any) -> None:
            pass

    class Factory:
        def buildProtocol(self, url: str) -> Echoes:
            return Echoes()

    endpoint = WebSocketClientEndpoint.new(
        reactor, url, caFile=caFile, http2=http2, http2Pool=HTTP2Pool(), pingInterval=None, handshakeTimeout=60
    )
    await _sleep(reactor, 0.5)
    before = rss(pid)
    apps: list[Echoes] = []
    started = time.perf_counter()
    for start in range(0, options.count, options.batch):
        batch = range(start, min(start + options.batch, options.count))
        apps += await gatherResults([Deferred.fromCoroutine(endpoint.connect(Factory())) for _ in batch])
    setup = time.perf_counter() - started
    await _sleep(reactor, 1.0)
    after = rss(pid)
    echoing = apps[: options.echo_sockets]
    for app in echoing:
        app.running = True
        app.transport.sendTextMessage("x" * 32)
    await _sleep(reactor, 1.0)  # warm-up
    first = sum(app.count for app in echoing)
    await _sleep(reactor, options.seconds)
    echoed = sum(app.count for app in echoing) - first
    for app in apps:
        app.running = False
        app.transport.loseConnection()
    await _sleep(reactor, 2.0)
    return {
        "mode": "HTTP/2" if http2 else "HTTP/1.1",
        "websockets": options.count,
        "setup_seconds": round(setup, 3),
        "setup_ms_per_websocket": round(1000 * setup / options.count, 3),
        "server_rss_per_websocket_bytes": (after - before) // options.count,
        "echo_32B_messages_per_second": round(echoed / options.seconds),
        "echo_sockets": len(echoing),
    }


def _sleep(reactor: Any, seconds: float) -> Any:
    from twisted.internet.task import deferLater

    return deferLater(reactor, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="WebSockets per mode (default 1000)")
    parser.add_argument("--batch", type=int, default=100, help="opened at once (default 100)")
    parser.add_argument("--echo-sockets", type=int, default=64, help="WebSockets echoing (default 64)")
    parser.add_argument("--seconds", type=float, default=5.0, help="echo measurement (default 5)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "http2.json"))
    options = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    if shutil.which("taskset"):
        os.sched_setaffinity(0, {1})

    from tests.support.pki import make_pki
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    results: list[dict[str, Any]] = []

    async def run() -> None:
        with tempfile.TemporaryDirectory() as directory:
            pki = make_pki(Path(directory), dnsNames=["localhost"])
            for http2 in (True, False):
                port = free_port()
                server = start_server(pki, port, Path(directory) / "twistd.log")
                try:
                    url = f"wss://localhost:{port}/echo"
                    results.append(await measure(reactor, url, str(pki.caFile), http2, options, server.pid))
                    print(json.dumps(results[-1]), flush=True)
                finally:
                    server.terminate()
                    server.wait(10)

    def done(result: Any) -> Any:
        reactor.stop()
        return result

    reactor.callWhenRunning(lambda: Deferred.fromCoroutine(run()).addBoth(done))
    reactor.run()
    Path(options.output).write_text(json.dumps({"python": sys.version.split()[0], "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
