"""
Hostile HTTP against a live L{WebSocketSite} and against C{twistd -n
txpulse} (issue 12, items 3, 4 and 13): slow requests after a quick first
one, connections beyond the caps, bursts of connects beyond the listen
backlog, request bodies the tree does not take, and foreign C{Host} values.
Each attack is answered as documented, leaves a log line naming the
attacker, and a well-behaved client connected throughout sees no
disruption.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource
from twisted.web.static import Data, File

from txpulse import WebSocketResource
from txpulse.plugin.metrics import ConnectionRegistry
from txpulse.server.files import builtinSite

from ..support.logs import LogLines
from ..support.processes import TwistdServer
from ..support.rawsocket import RawSocket, dribble
from ..support.requests import request_bytes
from ..support.waits import until, within
from .conftest import STATIC_PAGE, Bystander, HardenedServer, HardenedSite, ObservedEchoFactory, peer_of, undisturbed


@pytest_twisted.async_yield_fixture
async def site() -> AsyncIterator[Callable[..., HardenedServer]]:
    """
    C{site(**siteOptions)} starts a L{HardenedSite} (the conftest's: echo at
    C{/echo}, a static page at C{/static}) with any L{WebSocketSite} keyword
    argument, e.g. C{maxConnectionsPerAddress}; stopped at teardown.
    """
    servers: list[HardenedServer] = []

    def start(**siteOptions: Any) -> HardenedServer:
        factory = ObservedEchoFactory()
        registry = ConnectionRegistry()
        root = Resource()
        root.putChild(b"echo", WebSocketResource(factory, observer=registry.observerFor("/echo"), pingInterval=None))
        root.putChild(b"static", Data(STATIC_PAGE, "text/html"))
        siteOptions.setdefault("requestTimeout", 5.0)
        server = HardenedServer.listen(HardenedSite(root, **siteOptions), factory=factory, registry=registry)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def page_request(port: int, path: str = "/static", host: str | None = None) -> bytes:
    """
    A plain C{GET} (C{host=""} leaves the C{Host} header out).
    """
    host = f"127.0.0.1:{port}" if host is None else host
    return f"GET {path} HTTP/1.1\r\n".encode() + (f"Host: {host}\r\n".encode() if host else b"") + b"\r\n"


async def closed(sock: RawSocket) -> None:
    """
    The server closes the connection and sends nothing more.
    """
    assert await sock.read_until_eof() == b""


# -- item 3: every request has the deadline ----------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_slow_request_after_a_static_page_gets_408(site: Any, raw: Any, logs: LogLines) -> None:
    """
    After a quick C{GET /static}, the next request's head dribbled one byte
    every 0.1 s is answered 408 once C{requestTimeout} (0.5 s) has passed
    since its first byte, the connection closed and the peer logged (before
    issue 12 it was kept for as long as the bytes kept coming).
    """
    server = site(requestTimeout=0.5)
    async with undisturbed(server):
        sock = await raw.connect(server.port)
        peer = peer_of(sock)
        await sock.send(page_request(server.port))
        first = await sock.read_response()
        assert first.status == 200 and first.body == STATIC_PAGE
        slow = b"GET /static HTTP/1.1\r\nX-Slow: " + b"a" * 100
        sent, elapsed = await within(deferToThread(dribble, sock, slow, 0.1))
        response = await sock.read_response()
        assert response.status == 408
        assert response.headers["connection"] == "close"
        await closed(sock)
        assert sent >= 3 and 0.4 <= elapsed < 1.5
        await logs.expect(peer, "no complete request within 0.5s (408)")


@pytest_twisted.ensureDeferred
async def test_refused_upgrade_ends_the_connection(site: Any, raw: Any, logs: LogLines) -> None:
    """
    A refused upgrade (426: a plain GET on the WebSocket path) says
    C{Connection: close} and the server closes at once, long before any
    deadline: no second request can follow on that connection.
    """
    server = site(requestTimeout=5.0)
    async with undisturbed(server):
        sock = await raw.connect(server.port)
        await sock.send(page_request(server.port, "/echo"))
        started = time.monotonic()
        response = await sock.read_response()
        assert response.status == 426
        assert response.headers["connection"] == "close"
        await closed(sock)
        assert time.monotonic() - started < 1.0


@pytest_twisted.ensureDeferred
async def test_idle_keepalive_connection_is_closed(site: Any, raw: Any) -> None:
    """
    A connection left idle after a response is closed after
    C{keepAliveTimeout} seconds.
    """
    server = site(keepAliveTimeout=0.3)
    async with undisturbed(server):
        sock = await raw.connect(server.port)
        await sock.send(page_request(server.port))
        assert (await sock.read_response()).status == 200
        started = time.monotonic()
        await closed(sock)
        assert 0.2 <= time.monotonic() - started < 1.5


# -- item 3: connection caps ------------------------------------------------------------------


async def hold(raw: Any, port: int, count: int, path: str = "/static") -> list[RawSocket]:
    """
    C{count} connections, each proven served (C{path} answered 200).
    """
    held = []
    for _ in range(count):
        sock = await raw.connect(port)
        await sock.send(page_request(port, path))
        assert (await sock.read_response()).status == 200
        held.append(sock)
    return held


async def refused(raw: Any, port: int) -> str:
    """
    A new connection, refused at once: 503 and a close. Returns its name in
    the server's log lines.
    """
    sock = await raw.connect(port)
    peer = peer_of(sock)
    response = await sock.read_response()
    assert response.status == 503, response.raw
    assert response.headers["connection"] == "close"
    await closed(sock)
    return peer


@pytest.mark.parametrize("cap", ["maxConnectionsPerAddress", "maxConnections"])
@pytest_twisted.ensureDeferred
async def test_connections_over_the_cap_are_refused(site: Any, raw: Any, logs: LogLines, cap: str) -> None:
    """
    With a cap of 4 connections (per address, or in total), the bystander
    and 3 more are served; 20 more are refused at once (503, close) with one
    log line naming the cap, not 20; once the 3 close, new connections are
    served again. The bystander notices nothing.
    """
    server = site(**{cap: 4})
    async with undisturbed(server):
        held = await hold(raw, server.port, 3)
        first = await refused(raw, server.port)
        for _ in range(19):
            await refused(raw, server.port)
        line = await logs.expect(first, "Refused a connection")
        assert ("--max-connections-per-address" if cap == "maxConnectionsPerAddress" else "--max-connections)") in line
        assert len(logs.matching("Refused")) == 1
        for sock in held:
            sock.close()
        await until(lambda: server.site.openConnections == 1, "the held connections to close")
        await hold(raw, server.port, 1)


# -- item 3: the listen backlog (the plugin) --------------------------------------------------


def established_while_stopped(process: Any, port: int, attempts: int) -> int:
    """
    (In a thread.) Stop the server process (SIGSTOP: it accepts nothing),
    start C{attempts} connects to C{port} at once, and count those the
    kernel completes within 0.5 s: the listen backlog, plus one. Resume
    the process and close them.
    """
    os.kill(process.pid, signal.SIGSTOP)
    socks = []
    try:
        for _ in range(attempts):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            socks.append(sock)
        done: set[socket.socket] = set()
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and len(done) < attempts:
            _, writable, _ = select.select([], [s for s in socks if s not in done], [], 0.05)
            done.update(s for s in writable if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
        return len(done)
    finally:
        os.kill(process.pid, signal.SIGCONT)
        for sock in socks:
            sock.close()


def test_plugin_listen_backlog(tmp_path: Path) -> None:
    """
    C{twistd txpulse} listens with a backlog of 1024 (C{--backlog}) on a
    C{--listen} endpoint that sets none, so a burst of 300 connects is
    queued whole while the server is busy; one that sets C{backlog=50}
    keeps it (Twisted's default, which drops the rest of a burst: each
    dropped SYN costs its client a 1 s retry).
    """
    other = TwistdServer(tmp_path / "x.log").port  # a free port
    with TwistdServer(
        tmp_path / "twistd.log", "--listen", f"tcp:{other}:interface=127.0.0.1:backlog=50", morePorts=[other]
    ) as server:
        assert established_while_stopped(server.process, server.port, 300) == 300
        assert established_while_stopped(server.process, other, 300) <= 51


# -- item 4: request bodies ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_body_over_the_limit_is_refused_before_it_is_read(site: Any, raw: Any, logs: LogLines) -> None:
    """
    C{POST /echo} announcing a 1 TB body (before issue 12: spooled to a
    temporary file at loopback speed, 405 only at the end) is answered 413
    as soon as its head arrives, and the connection closed.
    """
    server = site(maxRequestBody=0)
    async with undisturbed(server):
        sock = await raw.connect(server.port)
        peer = peer_of(sock)
        await sock.send(
            f"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: 1000000000000\r\n\r\n".encode()
        )
        response = await sock.read_response()
        assert response.status == 413
        assert response.headers["connection"] == "close"
        await closed(sock)
        await logs.expect(peer, "1000000000000-byte request body", "(413)")


@pytest_twisted.ensureDeferred
async def test_chunked_body_is_cut_at_the_limit(site: Any, raw: Any, logs: LogLines) -> None:
    """
    A chunked body is counted as it arrives: 64 KiB are taken in, the chunk
    that goes over C{maxRequestBody} (64 KiB) is answered 413 and the
    connection closed.
    """
    server = site(maxRequestBody=65536)
    async with undisturbed(server):
        sock = await raw.connect(server.port)
        peer = peer_of(sock)
        head = f"POST /static HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunk = b"4000\r\n" + b"z" * 16384 + b"\r\n"
        await sock.send(head.encode() + chunk * 4)
        await sock.send(b"1\r\nz\r\n")
        response = await sock.read_response()
        assert response.status == 413
        await closed(sock)
        await logs.expect(peer, "chunked request body over the limit of 65536 (413)")


# -- item 13: the Host allow-list --------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        pytest.param("rebound.attacker.example", 421, id="foreign"),
        pytest.param("rebound.attacker.example:{port}", 421, id="foreign-with-port"),
        pytest.param("", 400, id="missing"),
    ],
)
@pytest.mark.parametrize("path", ["/static", "/echo"])
@pytest_twisted.ensureDeferred
async def test_foreign_host_is_refused(site: Any, raw: Any, logs: LogLines, host: str, status: int, path: str) -> None:
    """
    With C{allowedHosts=["127.0.0.1"]} (the bystander's C{Host} is
    C{127.0.0.1:PORT}), a page or an upgrade for another host (DNS
    rebinding) is answered 421, one without C{Host} 400; the connection is
    closed and the peer logged.
    """
    server = site(allowedHosts=["127.0.0.1"])
    async with undisturbed(server):
        sock = await raw.connect(server.port)
        peer = peer_of(sock)
        if path == "/echo":
            request = request_bytes(server.port, extra=[("Host", host.format(port=server.port))] if host else [])
            request = request.replace(f"Host: 127.0.0.1:{server.port}\r\n".encode(), b"", 1)
        else:
            request = page_request(server.port, path, host.format(port=server.port))
        await sock.send(request)
        response = await sock.read_response()
        assert response.status == status, response.raw
        assert response.headers["connection"] == "close"
        await closed(sock)
        await logs.expect(peer, f"({status})")


# -- the plugin: items 3, 4 and 13 together -----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_plugin_refuses_bodies_foreign_hosts_and_extra_connections(tmp_path: Path, raw: Any) -> None:
    """
    C{twistd -n txpulse --allowed-host 127.0.0.1 --max-connections-per-address 4}:
    C{POST /echo} with a 1 TB C{Content-Length} gets 413 at once (the
    built-in tree takes no bodies), a foreign C{Host} 421, a connection
    beyond the cap 503; a bystander on C{/echo} keeps echoing throughout.
    """
    twistd = TwistdServer(tmp_path / "twistd.log", "--allowed-host", "127.0.0.1", "--max-connections-per-address", "4")
    await within(deferToThread(twistd.start), 20)
    bystander = Bystander(f"ws://127.0.0.1:{twistd.port}/echo")
    try:
        await bystander.connect()
        await bystander.exchange()
        port = twistd.port

        sock = await raw.connect(port)
        await sock.send(
            f"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 10000000000000\r\n\r\n".encode()
        )
        assert (await sock.read_response()).status == 413
        await closed(sock)

        sock = await raw.connect(port)
        await sock.send(page_request(port, "/", "rebound.attacker.example"))
        assert (await sock.read_response()).status == 421
        await closed(sock)

        held = await hold(raw, port, 3, "/")
        await refused(raw, port)
        for sock in held:
            sock.close()
        await bystander.exchange()
        await bystander.close()
    finally:
        bystander.abort()
        await within(deferToThread(twistd.stop), 20)
    log = twistd.output()
    assert "10000000000000-byte request body, over the limit of 0 (413)" in log
    assert "'rebound.attacker.example' is not an allowed host (421)" in log
    assert "per-address cap" in log


# -- a slow reader of a large response (review of issue 12) -------------------------------------


def stalled_reader(port: int, path: str) -> socket.socket:
    """
    A connection with a small receive buffer that asks for C{path} and
    never reads.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock


@pytest_twisted.ensureDeferred
async def test_reader_that_stops_reading_a_large_file_is_aborted(tmp_path: Path, logs: LogLines) -> None:
    """
    A client that asks for a 50 MB file and never reads is aborted once
    it has taken none of the response for C{sendTimeout} (1 s), with a log
    line naming it (before: held with its file descriptor for as long as
    it liked, whatever the request and keep-alive deadlines). The bystander
    notices nothing.
    """
    (tmp_path / "big.bin").write_bytes(b"")
    os.truncate(tmp_path / "big.bin", 50 << 20)
    factory = ObservedEchoFactory()
    root = Resource()
    root.putChild(b"echo", WebSocketResource(factory, pingInterval=None))
    root.putChild(b"big.bin", File(str(tmp_path / "big.bin")))
    site = HardenedSite(root, requestTimeout=1.0, keepAliveTimeout=1.0, sendTimeout=1.0)
    server = HardenedServer.listen(site, factory=factory, registry=ConnectionRegistry())
    try:
        async with undisturbed(server):
            sock = stalled_reader(server.port, "/big.bin")
            peer = peer_of(RawSocket(sock))
            try:
                await until(lambda: site.openConnections == 2, "the reader to connect")
                started = time.monotonic()
                await until(lambda: site.openConnections == 1, "the stalled reader to be aborted", seconds=10)
                assert time.monotonic() - started < 5
                await logs.expect(peer, "took none of its response for 1s")
            finally:
                sock.close()
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_slow_but_steady_reader_keeps_its_download(tmp_path: Path) -> None:
    """
    A client reading a large file slowly but steadily (64 KiB every 0.1 s)
    is not taken for a stalled one: it is still served after three times
    C{sendTimeout} (1 s).
    """
    (tmp_path / "big.bin").write_bytes(b"")
    os.truncate(tmp_path / "big.bin", 50 << 20)
    factory = ObservedEchoFactory()
    root = Resource()
    root.putChild(b"echo", WebSocketResource(factory, pingInterval=None))
    root.putChild(b"big.bin", File(str(tmp_path / "big.bin")))
    site = HardenedSite(root, requestTimeout=1.0, sendTimeout=1.0)
    server = HardenedServer.listen(site, factory=factory, registry=ConnectionRegistry())

    def readSlowly(sock: socket.socket) -> int:
        received = 0
        for _ in range(30):
            time.sleep(0.1)
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += len(chunk)
        return received

    try:
        sock = stalled_reader(server.port, "/big.bin")
        try:
            received = await within(deferToThread(readSlowly, sock), 20)
            assert received > 30 * 4096
            assert site.openConnections == 1
        finally:
            sock.close()
    finally:
        await server.stop()


# -- pipelined requests behind a full buffer (issue 14) ---------------------------------------


class Sized(Resource):
    """
    C{GET /sized?n=N}: N bytes, written at once (no producer).
    """

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        return b"s" * int(request.args[b"n"][0])


def pipelined(port: int, requests: list[bytes], seconds: float) -> list[tuple[bytes, float | None]]:
    """
    (In a thread.) One connection per entry of C{requests}, each sending
    its bytes in one write, then reading everything until the server
    closes or C{seconds} pass. Returns, per connection, what was received
    and when (seconds after the last send) the server closed it, C{None}
    if it did not.
    """
    socks = []
    for data in requests:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(data)
        socks.append(sock)
    received = {sock: b"" for sock in socks}
    closedAt: dict[socket.socket, float] = {}
    started = time.monotonic()
    try:
        while len(closedAt) < len(socks) and time.monotonic() - started < seconds:
            readable, _, _ = select.select([s for s in socks if s not in closedAt], [], [], 0.1)
            for sock in readable:
                try:
                    chunk = sock.recv(1 << 20)
                except OSError:
                    chunk = b""
                if chunk:
                    received[sock] += chunk
                else:
                    closedAt[sock] = time.monotonic() - started
        return [(received[sock], closedAt.get(sock)) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@pytest_twisted.ensureDeferred
async def test_pipelined_pages_are_all_answered(tmp_path: Path) -> None:
    """
    The built-in site's page (C{/}, a file written by a pull producer)
    asked for 40 times in one write, on 8 connections whose first response
    (C{/sized}) shifts where Twisted's 64 KiB buffer fills: every request
    is answered and each connection is closed by C{keepAliveTimeout} (1 s).
    Before, a response whose head and body both went into the full buffer
    was paused twice and resumed once: the hostile test of issue 14 got 34
    of 40 answers, then the connection stayed open, past every deadline,
    holding its slot of the per-address cap. The bystander notices nothing.
    """
    factory = ObservedEchoFactory()
    registry = ConnectionRegistry()
    root = builtinSite()
    root.putChild(b"echo", WebSocketResource(factory, observer=registry.observerFor("/echo"), pingInterval=None))
    root.putChild(b"sized", Sized())
    site = HardenedSite(root, requestTimeout=1.0, keepAliveTimeout=1.0)
    server = HardenedServer.listen(site, factory=factory, registry=registry)
    page = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    try:
        async with undisturbed(server):
            [(one, _)] = await within(deferToThread(pipelined, server.port, [page], 5.0), 10)
            size = len(one)  # one response to /, head and body
            assert one.startswith(b"HTTP/1.1 200 OK") and size > 1000
            requests = [
                f"GET /sized?n={size * phase // 8} HTTP/1.1\r\nHost: x\r\n\r\n".encode() + page * 40
                for phase in range(8)
            ]
            results = await within(deferToThread(pipelined, server.port, requests, 10.0), 20)
            for received, closedAt in results:
                assert received.count(b"HTTP/1.1 200 OK") == 41
                assert closedAt is not None and closedAt < 5.0
            await until(lambda: site.openConnections == 1, "the pipelining connections to close")
    finally:
        await server.stop()


# -- refused upgrades with long targets: the log stays small (issue 14) ------------------------


def refuse_many(port: int, request: bytes, count: int) -> int:
    """
    (In a thread.) C{count} connections, one after the other, each sending
    C{request} and reading the answer until the server closes; returns how
    many were answered 400.
    """
    answered = 0
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            answered += answer.startswith(b"HTTP/1.1 400")
    return answered


@pytest_twisted.ensureDeferred
async def test_refused_upgrades_with_long_targets_log_little(site: Any, logs: LogLines) -> None:
    """
    300 upgrades with a 12 KB request target and a bad C{Sec-WebSocket-Key}
    (3.6 MB sent) make one refusal line, clipped, and one access-log line
    each, clipped too: under 150 KB of log in all (before: two lines of
    about 12 KB per request, 7 MB). The bystander notices nothing.
    """
    server = site()
    async with undisturbed(server):
        request = request_bytes(server.port, "/echo?" + "a" * 12000, key="x")
        assert await within(deferToThread(refuse_many, server.port, request, 300), 30) == 300
        line = await logs.expect("handshake refused", "... (12006 characters): 400")
        assert len(line) < 600
        await until(lambda: len(logs.matching('"GET /echo?')) == 300, "the access-log lines")
    assert len(logs.matching("handshake refused")) == 1
    assert sum(map(len, logs)) < 150_000


# -- the per-address cap over IPv6 -----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_per_address_cap_over_ipv6_loopback() -> None:
    """
    Over IPv6 (C{::1}) the per-address cap holds as over IPv4: with a cap
    of 2, the third connection is answered 503 and closed. (Addresses of
    one C{/64} counted together: see L{tests.server.test_site}.)
    """
    site = HardenedSite(Resource(), maxConnectionsPerAddress=2)
    port = reactor.listenTCP(0, site, interface="::1")
    socks: list[socket.socket] = []
    try:

        def connect() -> socket.socket:
            sock = socket.create_connection(("::1", port.getHost().port), timeout=5)
            socks.append(sock)
            return sock

        for _ in range(2):
            await deferToThread(connect)
        await until(lambda: site.openConnections == 2, "two connections")
        third = await deferToThread(connect)
        answer = await within(deferToThread(third.recv, 1024))
        assert answer.startswith(b"HTTP/1.1 503")
        assert site._perAddress == {"::/64": 2}
    finally:
        for sock in socks:
            sock.close()
        await until(lambda: site.openConnections == 0, "the connections to close")
        await port.stopListening()
