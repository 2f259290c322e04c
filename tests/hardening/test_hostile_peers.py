"""
Hostile (or merely broken) peers at the TCP level, against a live server: a
peer that stops reading, one that vanishes without a FIN, one that
half-closes. Each is dropped or closed as documented, with a log line,
within a bounded time and memory, while a well-behaved client connected
throughout sees no disruption.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from wsproto.frame_protocol import Opcode

from ..support.frames import close_payload, raw_frame
from ..support.logs import LogLines
from ..support.waits import WAIT, within
from .conftest import peer_of, undisturbed, write_backlog


@pytest_twisted.ensureDeferred
async def test_peer_that_stops_reading_is_dropped_past_the_write_buffer_limit(
    hardened: Any, raw: Any, logs: LogLines
) -> None:
    """
    A peer that never reads while the application floods it (one 64 KiB
    message per reactor turn) is dropped once more than C{maxWriteBuffer}
    (256 KiB) is queued behind its full socket; the drop is logged with the
    peer's address, the application sees 1006, and the server never holds
    much more than the limit for it. The bystander is served during the
    flood.
    """
    limit = 256 << 10
    server = hardened(maxWriteBuffer=limit)
    async with undisturbed(server) as bystander:
        sock = await raw.upgrade(server.port)
        peer = peer_of(sock)
        app = await server.factory.next()
        transport = app.transport.transport
        chunk = b"z" * (64 << 10)
        largest = 0
        deadline = time.monotonic() + WAIT
        sent = 0
        while not app.lost.called and time.monotonic() < deadline:
            app.transport.sendBytesMessage(chunk)
            sent += 1
            largest = max(largest, write_backlog(transport))
            if sent == 8:
                await bystander.exchange()  # while the flood is under way
            await deferLater(reactor, 0)
        failure = await app.lostReason()
        assert (failure.value.code, failure.value.clean) == (1006, False)
        # Up to Twisted's 64 KiB pause threshold plus the message that
        # crossed it, then the limit plus the message that crossed it.
        message = len(chunk) + 4
        assert largest <= (64 << 10) + message + limit + message, largest
        await logs.expect(peer, "is not reading", "dropping the connection")
        await logs.expect("WebSocket closed:", peer, "code=1006")


@pytest_twisted.ensureDeferred
async def test_peer_that_vanishes_is_dropped_with_1011_by_the_keepalive(
    hardened: Any, raw: Any, logs: LogLines
) -> None:
    """
    A peer that goes silent without a FIN (it neither reads nor answers
    pings) is pinged after C{pingInterval} (0.2 s) and, silent
    C{pingTimeout} (0.3 s) later, closed with 1011 and dropped without
    waiting for it: within a second of opening. The bystander, which
    answers pings, stays.
    """
    server = hardened(pingInterval=0.2, pingTimeout=0.3)
    async with undisturbed(server):
        sock = await raw.upgrade(server.port)
        peer = peer_of(sock)
        app = await server.factory.next()
        start = time.monotonic()
        failure = await app.lostReason()
        elapsed = time.monotonic() - start
        assert 0.4 <= elapsed < 1.0, elapsed
        assert (failure.value.codeSent, failure.value.code) == (1011, 1006)
        messages = await sock.read_all_messages()  # what it would have read
        assert [(m.opcode, m.code) for m in messages] == [(Opcode.PING, None), (Opcode.CLOSE, 1011)]
        await logs.expect(peer, "silent 0.3s after a ping; closing with 1011")


@pytest_twisted.ensureDeferred
async def test_vanished_peer_with_a_backlog_is_aborted_after_the_close_timeout(
    hardened: Any, raw: Any, logs: LogLines
) -> None:
    """
    When the vanished peer's window is full (the server holds a backlog for
    it, under C{maxWriteBuffer}), neither the ping nor the close frame can
    reach it, so closing can never finish: the connection is aborted
    C{closeTimeout} (0.3 s) after the keepalive gave up, freeing the
    backlog.
    """
    server = hardened(pingInterval=0.2, pingTimeout=0.3, closeTimeout=0.3)
    async with undisturbed(server):
        sock = await raw.upgrade(server.port)
        peer = peer_of(sock)
        sock.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        app = await server.factory.next()
        start = time.monotonic()
        transport = app.transport.transport
        for _ in range(64):  # 4 MiB: more than the kernel buffers take
            app.transport.sendBytesMessage(b"q" * (64 << 10))
            await deferLater(reactor, 0)
        assert write_backlog(transport) > 0
        failure = await app.lostReason()
        elapsed = time.monotonic() - start
        assert 0.7 <= elapsed < 1.5, elapsed
        assert (failure.value.codeSent, failure.value.code) == (1011, 1006)
        await logs.expect(peer, "silent 0.3s after a ping; closing with 1011")
        await logs.expect(peer, "did not finish closing within 0.3s; aborting")


def half_close(sock: socket.socket, data: bytes) -> None:
    """
    (In a thread.) Send C{data}, then shut down the sending direction (FIN)
    while keeping the socket open for reading. C{TCP_CORK} holds the data
    back until the shutdown, so it leaves in one segment with the FIN (as
    it would from a client that writes and closes at once): the server
    sees both in the same read cycle, every time.
    """
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)


@pytest_twisted.ensureDeferred
async def test_peer_that_half_closes_after_a_message_ends_as_1006(hardened: Any, raw: Any, logs: LogLines) -> None:
    """
    A peer that sends a message then half-closes (FIN without a close
    frame): the server takes the EOF as the end of the connection
    (abnormal: 1006 for the application, after the message, and the log
    line), closes its side, and raises nothing.
    """
    server = hardened()
    async with undisturbed(server):
        sock = await raw.upgrade(server.port)
        peer = peer_of(sock)
        app = await server.factory.next()
        await within(deferToThread(half_close, sock.sock, raw_frame(0x81, b"last words")))
        failure = await app.lostReason()
        assert (failure.value.code, failure.value.codeSent, failure.value.clean) == (1006, None, False)
        await within(deferToThread(sock.sock.recv, 1 << 16))  # the server closed its side: EOF (or the echo)
        await logs.expect("WebSocket closed:", peer, "code=1006", "messages in=1 out=1")
        assert not logs.matching("Traceback")


@pytest_twisted.ensureDeferred
async def test_peer_that_half_closes_still_receives_what_was_sent_before_the_eof(hardened: Any, raw: Any) -> None:
    """
    Half-closing only ends the peer's sending direction (TCP half-close):
    the answer the application wrote to the peer's last message, before
    the EOF was read, must still be delivered before the server closes,
    not discarded with the socket.
    """
    server = hardened()
    async with undisturbed(server):
        sock = await raw.upgrade(server.port)
        app = await server.factory.next()
        await within(deferToThread(half_close, sock.sock, raw_frame(0x81, b"last words")))
        await app.lostReason()
        assert app.transport.messagesOut == 1  # the application did answer
        messages = await sock.read_all_messages()  # until the server closes its side
        assert [(m.opcode, m.payload) for m in messages] == [(Opcode.TEXT, "last words")]


@pytest_twisted.ensureDeferred
async def test_peer_that_half_closes_after_its_close_frame_gets_the_echo(
    hardened: Any, raw: Any, logs: LogLines
) -> None:
    """
    A peer that sends its close frame and half-closes at once (a common
    shortcut) still receives the close echo: a clean 1000.
    """
    server = hardened()
    async with undisturbed(server):
        sock = await raw.upgrade(server.port)
        peer = peer_of(sock)
        app = await server.factory.next()
        await within(deferToThread(half_close, sock.sock, raw_frame(0x88, close_payload(1000))))
        messages = await sock.read_all_messages()
        assert [(m.opcode, m.code) for m in messages] == [(Opcode.CLOSE, 1000)]
        failure = await app.lostReason()
        assert (failure.value.code, failure.value.clean) == (1000, True)
        await logs.expect("WebSocket closed:", peer, "code=1000")
