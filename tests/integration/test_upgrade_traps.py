"""
The upgrade traps of DESIGN.md, over real TCP: an upgraded connection must
not inherit the HTTP channel's idle timeout, and bytes the client sends
right after its upgrade request (in the same segment, or while an
asynchronous accept hook is still deciding) belong to the WebSocket.
"""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from wsproto.frame_protocol import Opcode

from txpulse import WebSocketResource

from ..support.apps import RecordingFactory
from ..support.rawsocket import client_frame
from ..support.requests import keyed_upgrade
from ..support.servers import site_for
from ..support.waits import within

TEXT, BINARY, PING = 0x1, 0x2, 0x9


def later(seconds: float, value: object = None) -> Deferred[Any]:
    """
    An accept hook's answer that comes C{seconds} later.
    """
    return deferLater(reactor, seconds, lambda: value)


# -- the idle timeout ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_plain_http_connection_is_closed_by_site_idle_timeout(serve: Any, raw: Any) -> None:
    """
    Control for the next test: with C{site.timeOut = 0.5}, an idle plain
    HTTP connection really is closed by the server within about that long.
    """
    site = site_for(WebSocketResource(RecordingFactory(echo=True), pingInterval=None))
    site.timeOut = 0.5
    server = serve(site)
    sock = await raw.connect(server.port)
    assert await within(sock.read_until_eof(), 2.0) == b""


@pytest_twisted.ensureDeferred
async def test_upgraded_connection_outlives_site_idle_timeout(serve: Any, raw: Any, recorder: RecordingFactory) -> None:
    """
    A WebSocket left idle for twice the Site's HTTP idle timeout (0.5 s) is
    still open and echoes afterwards: the upgrade cancelled the channel's
    timeout.
    """
    site = site_for(WebSocketResource(recorder, pingInterval=None))
    site.timeOut = 0.5
    server = serve(site)
    sock = await raw.upgrade(server.port)
    await deferLater(reactor, 1.0)
    assert not recorder.built[0].lost.called
    await sock.send(client_frame(TEXT, b"still here"))
    message = await sock.read_message()
    assert message is not None
    assert (message.opcode, message.payload) == (Opcode.TEXT, "still here")


@pytest_twisted.ensureDeferred
async def test_upgraded_connection_after_async_accept_outlives_site_idle_timeout(
    serve: Any, raw: Any, recorder: RecordingFactory
) -> None:
    """
    The same when the upgrade was answered later by an asynchronous accept
    hook (the 101 is written outside the request's render call).
    """
    site = site_for(WebSocketResource(recorder, pingInterval=None, accept=lambda request: later(0.05)))
    site.timeOut = 0.5
    server = serve(site)
    sock = await raw.upgrade(server.port)
    await deferLater(reactor, 1.0)
    await sock.send(client_frame(BINARY, b"still here"))
    message = await sock.read_message()
    assert message is not None
    assert (message.opcode, message.payload) == (Opcode.BINARY, b"still here")


# -- bytes right behind the upgrade request -----------------------------------------


@pytest_twisted.ensureDeferred
async def test_frame_in_same_segment_as_upgrade_request_is_delivered(
    serve: Any, raw: Any, recorder: RecordingFactory
) -> None:
    """
    A masked text frame sent in the same C{sendall} as the upgrade request
    is delivered as a message: its echo follows the 101.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None))
    sock = await raw.connect(server.port)
    request, _ = keyed_upgrade(server.port)
    await sock.send(request + client_frame(TEXT, b"early bird"))
    assert (await sock.read_response()).status == 101
    message = await sock.read_message()
    assert message is not None
    assert (message.opcode, message.payload) == (Opcode.TEXT, "early bird")
    assert recorder.built[0].messages == ["early bird"]


@pytest_twisted.ensureDeferred
async def test_several_frames_and_a_ping_in_same_segment_as_upgrade_are_all_handled(serve: Any, raw: Any) -> None:
    """
    Two messages and a ping packed behind the upgrade request come back as
    two echoes, in order, and a pong (which may overtake the echoes: the
    core answers pings as it parses).
    """
    server = serve(WebSocketResource(RecordingFactory(echo=True), pingInterval=None))
    sock = await raw.connect(server.port)
    request, _ = keyed_upgrade(server.port)
    frames = client_frame(TEXT, b"one") + client_frame(PING, b"p") + client_frame(BINARY, b"two")
    await sock.send(request + frames)
    assert (await sock.read_response()).status == 101
    received = [await sock.read_message() for _ in range(3)]
    replies = [(m.opcode, m.payload) for m in received if m is not None]
    assert [r for r in replies if r[0] is not Opcode.PONG] == [(Opcode.TEXT, "one"), (Opcode.BINARY, b"two")]
    assert (Opcode.PONG, b"p") in replies


@pytest_twisted.ensureDeferred
async def test_frame_split_across_upgrade_segment_and_later_segment_is_delivered(serve: Any, raw: Any) -> None:
    """
    A frame whose first half rides with the upgrade request and whose
    second half comes later is reassembled.
    """
    server = serve(WebSocketResource(RecordingFactory(echo=True), pingInterval=None))
    sock = await raw.connect(server.port)
    request, _ = keyed_upgrade(server.port)
    frame = client_frame(TEXT, b"split across segments")
    await sock.send(request + frame[:7])
    assert (await sock.read_response()).status == 101
    await sock.send(frame[7:])
    message = await sock.read_message()
    assert message is not None and message.payload == "split across segments"


@pytest_twisted.ensureDeferred
async def test_frame_in_same_segment_is_delivered_after_async_accept(
    serve: Any, raw: Any, recorder: RecordingFactory
) -> None:
    """
    With an accept hook that answers 0.1 s later, a frame sent in the same
    segment as the upgrade request is still delivered after the 101.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None, accept=lambda request: later(0.1, "late")))
    sock = await raw.connect(server.port)
    request, _ = keyed_upgrade(server.port)
    await sock.send(request + client_frame(TEXT, b"early bird"))
    assert (await sock.read_response()).status == 101
    message = await sock.read_message()
    assert message is not None
    assert (message.opcode, message.payload) == (Opcode.TEXT, "early bird")
    assert recorder.built[0].transport.identity == "late"


@pytest_twisted.ensureDeferred
async def test_frames_sent_while_async_accept_runs_are_delivered(serve: Any, raw: Any) -> None:
    """
    Frames sent after the upgrade request but before the delayed 101 (one
    of them 64 KiB, enough for the HTTP channel to pause reading) are all
    delivered once the connection opens.
    """
    hookCalled: Deferred[None] = Deferred()

    def accept(request: Any) -> Deferred[Any]:
        hookCalled.callback(None)
        return later(0.1)

    server = serve(WebSocketResource(RecordingFactory(echo=True), pingInterval=None, accept=accept))
    sock = await raw.connect(server.port)
    request, _ = keyed_upgrade(server.port)
    await sock.send(request)
    await within(hookCalled)
    big = bytes(range(256)) * 256
    await sock.send(client_frame(TEXT, b"first") + client_frame(BINARY, big))
    await sock.send(client_frame(TEXT, b"last"))
    assert (await sock.read_response()).status == 101
    received = [await sock.read_message() for _ in range(3)]
    assert [m.payload for m in received if m is not None] == ["first", big, "last"]


@pytest_twisted.ensureDeferred
async def test_client_leaving_during_async_accept_cancels_the_hook(serve: Any, raw: Any) -> None:
    """
    A client that disconnects while the accept hook is still deciding gets
    the hook's Deferred cancelled, and no application is built.
    """
    called: Deferred[None] = Deferred()
    cancelled: Deferred[None] = Deferred()
    factory = RecordingFactory(echo=True)

    def accept(request: Any) -> Deferred[Any]:
        called.callback(None)
        return Deferred(lambda d: cancelled.callback(None))

    server = serve(WebSocketResource(factory, pingInterval=None, accept=accept))
    sock = await raw.connect(server.port)
    request, _ = keyed_upgrade(server.port)
    await sock.send(request + client_frame(TEXT, b"never delivered"))
    await within(called)
    sock.close()
    await within(cancelled)
    assert factory.built == []


@pytest_twisted.ensureDeferred
async def test_accept_hook_that_never_answers_gets_503(serve: Any, raw: Any) -> None:
    """
    An accept hook that does not answer within C{handshakeTimeout} gets the
    request refused with 503, and its Deferred is cancelled.
    """
    cancelled: list[bool] = []

    def accept(request: Any) -> Deferred[Any]:
        return Deferred(lambda d: cancelled.append(True))

    server = serve(
        WebSocketResource(RecordingFactory(echo=True), pingInterval=None, accept=accept, handshakeTimeout=0.2)
    )
    sock = await raw.connect(server.port)
    request, _ = keyed_upgrade(server.port)
    await sock.send(request)
    response = await sock.read_response()
    assert response.status == 503
    assert cancelled == [True]
