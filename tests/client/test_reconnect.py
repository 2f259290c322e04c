"""
L{ReconnectingWebSocketService}: first in memory (a fake TCP endpoint whose
connection attempts the test settles, a L{MemoryReactorClock} for the retry
delays and the handshake), then for real on loopback across a server
restart on the same port.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from wsproto.frame_protocol import FrameProtocol, Opcode

from txpulse import ReconnectingWebSocketService, WebSocketClientEndpoint, WebSocketResource

from ..support.apps import RecordingApp, RecordingFactory
from ..support.logs import captured_events
from ..support.net import free_port
from ..support.rawsocket import switching_protocols
from ..support.waits import within

# Twisted's own 404 page (twisted.web.resource.NoResource) is deprecated.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:twisted.web.resource")


# -- in memory -----------------------------------------------------------------------


@dataclasses.dataclass
class Attempt:
    """
    One connection attempt the service made through L{FakeTCPEndpoint}.
    """

    at: float
    factory: Any
    deferred: Deferred[Any]
    transport: StringTransport | None = None
    protocol: Any = None

    def refuse(self) -> None:
        """
        Fail the TCP connection attempt.
        """
        self.deferred.errback(ConnectionRefusedError())

    def connect(self) -> StringTransport:
        """
        Succeed at the TCP level: build the protocol, connect it to a
        L{StringTransport}, hand it to the service. Returns the transport
        (the upgrade request is in its C{value()}).
        """
        self.protocol = self.factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.deferred.callback(self.protocol)
        return self.transport

    def answer(self, response: bytes) -> None:
        """
        Feed the server's answer to the upgrade.
        """
        assert self.protocol is not None
        self.protocol.dataReceived(response)

    def accept(self) -> None:
        """
        Answer the upgrade with a valid C{101}.
        """
        assert self.transport is not None
        match = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)\s*$", self.transport.value())
        assert match is not None, self.transport.value()
        self.answer(switching_protocols(match.group(1)))

    def lose(self) -> None:
        """
        The TCP connection ends.
        """
        assert self.protocol is not None
        self.protocol.connectionLost(Failure(ConnectionDone()))


class FakeTCPEndpoint:
    """
    An C{IStreamClientEndpoint} whose C{connect} Deferreds the test settles
    (cf. C{endpointForTesting} in Twisted's C{test_internet.py}).
    """

    def __init__(self, clock: MemoryReactorClock) -> None:
        self.clock = clock
        self.attempts: list[Attempt] = []

    def connect(self, factory: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.attempts.append(Attempt(self.clock.seconds(), factory, d))
        return d


def in_memory(
    retryPolicy: Any = None,
) -> tuple[ReconnectingWebSocketService, FakeTCPEndpoint, MemoryReactorClock, RecordingFactory]:
    """
    A service over a L{FakeTCPEndpoint}; the clock drives both the retry
    delays and the handshake timeout.
    """
    clock = MemoryReactorClock()
    endpoint = WebSocketClientEndpoint.new(clock, "ws://example.test/feed", handshakeTimeout=5.0)
    tcp = FakeTCPEndpoint(clock)
    endpoint = dataclasses.replace(endpoint, tcpEndpoint=tcp)
    factory = RecordingFactory()
    service = ReconnectingWebSocketService(endpoint, factory, retryPolicy=retryPolicy, clock=clock)
    return service, tcp, clock, factory


def client_frames(data: bytes) -> list[Any]:
    """
    Parse what the client wrote after its upgrade request (wsproto as the
    oracle; it checks the frames are masked).
    """
    head, _, rest = data.partition(b"\r\n\r\n")
    parser = FrameProtocol(client=False, extensions=[])
    parser.receive_bytes(rest)
    return list(parser.received_frames())


def advance_to(clock: MemoryReactorClock, when: float) -> None:
    """
    Advance the clock to C{when} (tests use binary fractions of a second,
    so the arithmetic is exact).
    """
    clock.advance(when - clock.seconds())


def test_retry_delays_follow_the_retry_policy() -> None:
    """
    The first attempt is made at once; after the Nth consecutive failure
    the next attempt waits C{retryPolicy(N)} seconds, no less.
    """
    calls: list[int] = []

    def policy(attempt: int) -> float:
        calls.append(attempt)
        return float(attempt)  # 1, 2, 3 ...

    service, tcp, clock, _ = in_memory(policy)
    service.startService()
    assert [a.at for a in tcp.attempts] == [0.0]
    tcp.attempts[0].refuse()
    advance_to(clock, 0.875)
    assert len(tcp.attempts) == 1
    advance_to(clock, 1.0)
    assert [a.at for a in tcp.attempts] == [0.0, 1.0]
    tcp.attempts[1].refuse()
    advance_to(clock, 2.875)
    assert len(tcp.attempts) == 2
    advance_to(clock, 3.0)
    tcp.attempts[2].refuse()
    advance_to(clock, 6.0)
    assert [a.at for a in tcp.attempts] == [0.0, 1.0, 3.0, 6.0]
    assert calls == [1, 2, 3]
    assert service.protocol is None
    service.stopService()


def test_refused_handshake_is_retried_with_backoff() -> None:
    """
    A TCP connection whose upgrade is refused (HTTP 503) counts as a failed
    attempt: the application never opens, the connection is dropped, and
    the next attempt comes after the policy's delay.
    """
    service, tcp, clock, factory = in_memory(lambda n: 2.0)
    service.startService()
    waiting = service.whenConnected()
    transport = tcp.attempts[0].connect()
    assert transport.value().startswith(b"GET /feed HTTP/1.1\r\n")
    tcp.attempts[0].answer(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
    assert transport.disconnecting
    try:
        tcp.attempts[0].lose()  # the refused connection ends, as it then does
    except Exception as error:
        pytest.fail(f"the end of a refused connection upset the service: {error!r}")
    assert not waiting.called
    assert service.protocol is None
    assert all(app.transport is None for app in factory.built)
    advance_to(clock, 1.875)
    assert len(tcp.attempts) == 1
    advance_to(clock, 2.0)
    assert len(tcp.attempts) == 2
    service.stopService()


def test_open_connection_is_exposed_and_loss_reconnects_with_reset_backoff() -> None:
    """
    Once a handshake succeeds, C{whenConnected} fires with the application
    protocol, which C{protocol} exposes; when the connection is lost
    C{protocol} is C{None} again and the next attempt waits
    C{retryPolicy(1)} (the failure count starts over).
    """
    calls: list[int] = []

    def policy(attempt: int) -> float:
        calls.append(attempt)
        return 0.5 * attempt

    service, tcp, clock, factory = in_memory(policy)
    service.startService()
    waiting = service.whenConnected()
    tcp.attempts[0].refuse()
    advance_to(clock, 0.5)
    tcp.attempts[1].connect()
    assert not waiting.called
    tcp.attempts[1].accept()
    app = factory.built[-1]
    assert waiting.called and waiting.result is app
    assert service.protocol is app
    assert service.whenConnected().result is app
    tcp.attempts[1].lose()
    assert service.protocol is None
    assert app.reason is not None
    started = clock.seconds()
    advance_to(clock, started + 0.375)
    assert len(tcp.attempts) == 2
    advance_to(clock, started + 0.5)
    assert len(tcp.attempts) == 3
    assert calls == [1, 1]
    service.stopService()


def test_prepare_connection_is_called_with_each_open_protocol() -> None:
    """
    The C{prepareConnection} hook is called with the application protocol
    of every connection, once it is open.
    """
    prepared: list[Any] = []
    clock = MemoryReactorClock()
    tcp = FakeTCPEndpoint(clock)
    endpoint = dataclasses.replace(WebSocketClientEndpoint.new(clock, "ws://example.test/"), tcpEndpoint=tcp)
    factory = RecordingFactory()
    service = ReconnectingWebSocketService(
        endpoint, factory, retryPolicy=lambda n: 1.0, clock=clock, prepareConnection=prepared.append
    )
    service.startService()
    tcp.attempts[0].connect()
    assert prepared == []
    tcp.attempts[0].accept()
    tcp.attempts[0].lose()
    clock.advance(1.0)
    tcp.attempts[1].connect()
    tcp.attempts[1].accept()
    assert prepared == factory.built and len(prepared) == 2
    service.stopService()


def test_on_retry_is_called_once_per_retry_with_attempt_reason_and_delay() -> None:
    """
    The C{onRetry} hook is called each time another attempt is scheduled:
    with the count of consecutive failures, the failed attempt's reason (or
    the lost connection's, with the count back at 1) and the policy's delay,
    before the wait starts.
    """
    retries: list[tuple[int, type, float, float]] = []
    clock = MemoryReactorClock()
    tcp = FakeTCPEndpoint(clock)
    endpoint = dataclasses.replace(WebSocketClientEndpoint.new(clock, "ws://example.test/"), tcpEndpoint=tcp)
    service = ReconnectingWebSocketService(
        endpoint,
        RecordingFactory(),
        retryPolicy=lambda n: 0.5 * n,
        clock=clock,
        onRetry=lambda n, reason, delay: retries.append((n, reason.type, delay, clock.seconds())),
    )
    service.startService()
    assert retries == []
    tcp.attempts[0].refuse()
    assert retries == [(1, ConnectionRefusedError, 0.5, 0.0)]
    advance_to(clock, 0.5)
    tcp.attempts[1].refuse()
    assert retries[1:] == [(2, ConnectionRefusedError, 1.0, 0.5)]
    advance_to(clock, 1.5)
    tcp.attempts[2].connect()
    tcp.attempts[2].accept()
    assert len(retries) == 2
    tcp.attempts[2].lose()
    assert len(retries) == 3
    assert retries[2][0] == 1 and retries[2][2] == 0.5
    assert retries[2][1] is not ConnectionRefusedError
    service.stopService()
    assert len(retries) == 3


def test_default_retry_policy_backs_off_from_about_one_second_with_jitter() -> None:
    """
    Without a C{retryPolicy}, the first retry comes between 1 and 2.5
    seconds after a failure (Twisted's C{backoffPolicy}: 1.5 s plus up to
    1 s of jitter), and the delay varies from run to run.
    """
    state = random.getstate()
    delays = []
    try:
        for seed in range(6):
            random.seed(seed)
            service, tcp, clock, _ = in_memory()
            service.startService()
            tcp.attempts[0].refuse()
            while len(tcp.attempts) < 2 and clock.seconds() < 10:
                clock.advance(0.01)
            delays.append(round(tcp.attempts[1].at, 2))
            service.stopService()
    finally:
        random.setstate(state)
    assert all(1.0 <= d <= 2.51 for d in delays), delays
    assert len(set(delays)) > 1, delays


def test_stop_while_connected_closes_with_1000_and_stops_retrying() -> None:
    """
    Stopping the service sends a close frame with 1000 on the open
    connection; once it is gone no further attempt is made, however long
    the clock runs.
    """
    service, tcp, clock, factory = in_memory(lambda n: 0.1)
    service.startService()
    transport = tcp.attempts[0].connect()
    tcp.attempts[0].accept()
    stopped = service.stopService()
    frames = client_frames(transport.value())
    assert [f.opcode for f in frames] == [Opcode.CLOSE]
    assert frames[0].payload[0] == 1000
    tcp.attempts[0].lose()
    assert stopped.called
    assert service.protocol is None
    clock.advance(100)
    assert len(tcp.attempts) == 1


def test_stop_while_waiting_cancels_the_pending_retry() -> None:
    """
    Stopping the service between attempts cancels the scheduled retry.
    """
    service, tcp, clock, _ = in_memory(lambda n: 1.0)
    service.startService()
    tcp.attempts[0].refuse()
    stopped = service.stopService()
    assert stopped.called
    clock.advance(100)
    assert len(tcp.attempts) == 1


def test_stop_during_handshake_drops_the_connection() -> None:
    """
    Stopping the service while an upgrade is still unanswered closes that
    TCP connection: it must not linger, nor open later when the server's
    101 arrives.
    """
    service, tcp, clock, factory = in_memory(lambda n: 1.0)
    service.startService()
    transport = tcp.attempts[0].connect()
    service.stopService()
    assert transport.disconnecting, "the half-open handshake connection was left open"
    tcp.attempts[0].accept()
    assert all(app.transport is None for app in factory.built), "an application opened after stopService"


# -- on loopback ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_service_reconnects_across_a_server_restart_on_the_same_port(serve_txpulse: Any) -> None:
    """
    The service connects; the server stops listening and drops its
    connections (C{protocol} becomes C{None}; attempts are refused); a new
    server starts on the same port and the service reconnects by itself
    with a new protocol. Stopping the service then closes with 1000 (as
    the server application sees it) and no further attempt is made.
    """
    firstApps = RecordingFactory(echo=True)
    first = serve_txpulse({b"feed": WebSocketResource(firstApps, pingInterval=None)})
    url = first.url("/feed")
    endpoint = WebSocketClientEndpoint.new(reactor, url)
    factory = RecordingFactory()
    service = ReconnectingWebSocketService(endpoint, factory, retryPolicy=lambda n: 0.05)
    service.startService()
    try:
        one: RecordingApp = await within(service.whenConnected())
        assert service.protocol is one
        await firstApps.next()

        await first.stop()  # stop listening + abort every server-side connection
        await within(one.lost)
        assert service.protocol is None
        await deferLater(reactor, 0.3)  # a few refused attempts meanwhile
        assert service.protocol is None
        assert len(factory.built) == 1, "an application was built for a refused TCP connection"

        secondApps = RecordingFactory(echo=True)
        second = serve_txpulse({b"feed": WebSocketResource(secondApps, pingInterval=None)}, port=first.port)
        two: RecordingApp = await within(service.whenConnected())
        assert two is not one
        assert service.protocol is two
        serverApp = await secondApps.next()
        two.transport.sendTextMessage("back again")
        assert await two.next() == "back again"
    finally:
        stopping = service.stopService()
    await within(stopping)
    closed = await serverApp.closed()
    assert closed.code == 1000
    assert service.protocol is None
    connections = len(second.site.channels)
    await deferLater(reactor, 0.3)  # six retry periods
    assert len(second.site.channels) == connections, "the stopped service connected again"


@pytest_twisted.ensureDeferred
async def test_service_stop_completes_the_close_handshake(serve_txpulse: Any) -> None:
    """
    Stopping the service lets the close handshake finish: the server
    application sees a clean close with 1000 (its own close frame reached
    the client before TCP went away).
    """
    apps = RecordingFactory(echo=True)
    server = serve_txpulse({b"feed": WebSocketResource(apps, pingInterval=None)})
    factory = RecordingFactory()
    service = ReconnectingWebSocketService(
        WebSocketClientEndpoint.new(reactor, server.url("/feed")), factory, retryPolicy=lambda n: 0.05
    )
    service.startService()
    app: RecordingApp = await within(service.whenConnected())
    serverApp = await apps.next()
    await within(service.stopService())
    seen = await serverApp.closed()
    assert seen.code == 1000
    assert seen.clean, "the client dropped TCP without waiting for the server's close frame"
    closed = await app.closed()
    assert (closed.code, closed.codeSent) == (1000, 1000)


@pytest_twisted.ensureDeferred
async def test_service_connects_once_the_server_comes_up(serve_txpulse: Any) -> None:
    """
    Started while nothing listens, the service keeps retrying and connects
    as soon as a server appears on that port.
    """
    port = free_port()
    factory = RecordingFactory()
    service = ReconnectingWebSocketService(
        WebSocketClientEndpoint.new(reactor, f"ws://127.0.0.1:{port}/feed"), factory, retryPolicy=lambda n: 0.05
    )
    service.startService()
    try:
        connected = service.whenConnected()
        await deferLater(reactor, 0.2)
        assert not connected.called
        apps = RecordingFactory(echo=True)
        serve_txpulse({b"feed": WebSocketResource(apps, pingInterval=None)}, port=port)
        app = await within(connected)
        assert service.protocol is app
        await apps.next()
    finally:
        await within(service.stopService())


@pytest_twisted.ensureDeferred
async def test_refused_handshakes_are_retried_without_logging_errors(serve_txpulse: Any) -> None:
    """
    Against a server answering the upgrade with 404, the service keeps
    retrying on its schedule, never opens an application, and logs no
    error (each refused connection ending is expected, not a failure).
    """
    from twisted.logger import formatEvent

    server = serve_txpulse({b"feed": WebSocketResource(RecordingFactory(echo=True), pingInterval=None)})
    factory = RecordingFactory()
    service = ReconnectingWebSocketService(
        WebSocketClientEndpoint.new(reactor, server.url("/nope")), factory, retryPolicy=lambda n: 0.05
    )
    with captured_events() as events:
        try:
            service.startService()
            await deferLater(reactor, 0.4)
            assert service.protocol is None
            assert all(app.transport is None for app in factory.built)
            assert len(server.site.channels) >= 3, "the service stopped retrying after refusals"
        finally:
            await within(service.stopService())
            await deferLater(reactor, 0.05)
    errors = [
        text.strip().splitlines()[-1] if text.strip() else repr(event)
        for event in events
        if event.get("log_failure") is not None or event.get("isError")
        for text in [formatEvent(event)]
    ]
    assert errors == []
