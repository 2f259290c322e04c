"""
The wire, by hand: upgrade requests and client frames built independently
of txpulse's codec (unlike L{tests.support.frames.client_frame}), and blocking
sockets (driven from worker threads) that write exactly the bytes a test
wants and read the server's answer, with C{hashlib} computing the accept
key and wsproto's L{FrameProtocol} parsing the server's frames.
"""

from __future__ import annotations

import base64
import hashlib
import select
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest_twisted
from twisted.internet.threads import deferToThread
from wsproto.frame_protocol import FrameProtocol, Opcode

from .frames import raw_frame
from .requests import SAMPLE_KEY, keyed_upgrade, request_bytes
from .waits import WAIT, within

#: RFC 6455 §1.3.
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def client_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, masked: bool = True) -> bytes:
    """
    One frame as a client sends it, built by hand: masked (RFC 6455 §5.3)
    unless C{masked} is false.
    """
    return raw_frame((0x80 if fin else 0) | opcode, payload, masked=masked)


def accept_key_for(key: str | bytes) -> str:
    """
    C{Sec-WebSocket-Accept} for C{key}, computed independently of txpulse.
    """
    raw = key.encode("ascii") if isinstance(key, str) else key
    return base64.b64encode(hashlib.sha1(raw + GUID).digest()).decode("ascii")


def switching_protocols(key: str | bytes) -> bytes:
    """
    A server's minimal C{101} answer to an upgrade request carrying C{key}.
    """
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key_for(key).encode("ascii") + b"\r\n\r\n"
    )


def blocking_upgrade(
    port: int,
    path: str = "/echo",
    *,
    extra: Iterable[tuple[str, str]] = (),
    receiveBuffer: int | None = None,
    timeout: float = 5.0,
) -> tuple[socket.socket, bytes]:
    """
    Open a WebSocket to C{path} on C{127.0.0.1:port} on a blocking socket
    (its receive buffer shrunk to C{receiveBuffer} first, if given; no
    Nagle), for tests that drive it from one thread: the socket, once the
    C{101} and its accept key are checked, and the response head.
    """
    sock = socket.socket()
    if receiveBuffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receiveBuffer)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    sock.sendall(request_bytes(port, path, key=SAMPLE_KEY, extra=extra))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 ") and accept_key_for(SAMPLE_KEY).encode() in head, head
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, head


@dataclass
class HTTPResponse:
    """
    A parsed HTTP response head (and body, for non-101 answers).
    """

    raw: bytes
    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Message:
    """
    A complete message (or control frame) received from the server.

    For C{Opcode.CLOSE}, C{code} and C{reason} are set and C{payload} is
    empty.
    """

    opcode: Opcode
    payload: bytes | str = b""
    code: int | None = None
    reason: str | None = None


@dataclass
class RawSocket:
    """
    A blocking TCP (or TLS) socket driven from worker threads, for tests
    that need exact bytes on the wire. Every method is a coroutine that
    runs its blocking work via C{deferToThread}, so the reactor keeps
    serving.

    @ivar buffer: bytes received but not parsed yet.
    @ivar reset: whether the server reset (aborted) the connection.
    """

    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    reset: bool = False
    frames: FrameProtocol = field(default_factory=lambda: FrameProtocol(client=True, extensions=[]))

    # -- blocking primitives (run in a thread) --

    def _recv_more(self) -> bool:
        data = self.sock.recv(1 << 16)
        if not data:
            return False
        self.buffer += data
        return True

    def _read_head(self) -> HTTPResponse:
        while b"\r\n\r\n" not in self.buffer:
            if not self._recv_more():
                raise ConnectionError(f"EOF before the response head: {bytes(self.buffer)!r}")
        end = self.buffer.index(b"\r\n\r\n") + 4
        raw = bytes(self.buffer[:end])
        del self.buffer[:end]
        status_line, *header_lines = raw[:-4].decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return HTTPResponse(raw, int(status_line.split()[1]), headers)

    def _read_response(self) -> HTTPResponse:
        response = self._read_head()
        if response.status == 101:
            # What follows is WebSocket data: leave it in the buffer.
            return response
        if "content-length" in response.headers:
            size = int(response.headers["content-length"])
            while len(self.buffer) < size:
                if not self._recv_more():
                    break
            response.body = bytes(self.buffer[:size])
            del self.buffer[:size]
        elif response.headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buffer:
                    if not self._recv_more():
                        raise ConnectionError("EOF inside a chunked body")
                line_end = self.buffer.index(b"\r\n")
                size = int(bytes(self.buffer[:line_end]).split(b";")[0], 16)
                while len(self.buffer) < line_end + 2 + size + 2:
                    if not self._recv_more():
                        raise ConnectionError("EOF inside a chunk")
                body += bytes(self.buffer[line_end + 2 : line_end + 2 + size])
                del self.buffer[: line_end + 2 + size + 2]
                if size == 0:
                    break
            response.body = body
        return response

    def _read_message(self) -> Message | None:
        """
        The next complete message or control frame; C{None} at EOF.
        """
        opcode: Opcode | None = None
        parts: list[Any] = []
        while True:
            if self.buffer:
                self.frames.receive_bytes(bytes(self.buffer))
                self.buffer.clear()
            for frame in self.frames.received_frames():
                if frame.opcode is Opcode.CLOSE:
                    code, reason = frame.payload
                    return Message(Opcode.CLOSE, code=int(code), reason=reason)
                if frame.opcode in (Opcode.PING, Opcode.PONG):
                    return Message(frame.opcode, bytes(frame.payload))
                if frame.opcode is not Opcode.CONTINUATION:
                    opcode = frame.opcode
                parts.append(frame.payload)
                if frame.message_finished:
                    assert opcode is not None
                    if opcode is Opcode.TEXT:
                        return Message(opcode, "".join(parts))
                    return Message(opcode, b"".join(bytes(p) for p in parts))
            if not self._recv_more():
                return None

    def _read_until_eof(self) -> bytes:
        try:
            while self._recv_more():
                pass
        except ConnectionResetError:
            self.reset = True
        data = bytes(self.buffer)
        self.buffer.clear()
        # Like any client, close our side once the server has closed its own
        # (a server may half-close and wait for this before it lets go).
        self.sock.close()
        return data

    # -- the coroutine API --

    async def send(self, data: bytes) -> None:
        """
        Send C{data} with one C{sendall}.
        """
        await within(deferToThread(self.sock.sendall, data))

    async def read_response(self) -> HTTPResponse:
        """
        Read the server's HTTP answer (head, and the body unless it is 101).
        """
        return await within(deferToThread(self._read_response))

    async def read_message(self) -> Message | None:
        """
        Read the next message or control frame from the server (C{None} at
        EOF).
        """
        return await within(deferToThread(self._read_message))

    async def read_all_messages(self) -> list[Message]:
        """
        Read messages and control frames until the server closes the
        connection, then close the socket.
        """
        messages = []
        while (message := await self.read_message()) is not None:
            messages.append(message)
        self.close()
        return messages

    async def read_until_eof(self) -> bytes:
        """
        Read until the server closes the connection, then close the
        socket; return what came. A reset (an aborted connection) also ends
        it, and sets C{reset}.
        """
        return await within(deferToThread(self._read_until_eof))

    def close(self) -> None:
        """
        Close the socket (idempotent).
        """
        self.sock.close()


def dribble(sock: RawSocket, data: bytes, interval: float) -> tuple[int, float]:
    """
    (In a thread: C{deferToThread(dribble, ...)}.) Send C{data} one byte
    every C{interval} seconds, as a slowloris client does, until the server
    answers (or closes); when every byte is out first, wait up to
    C{20 * interval} for that answer.

    @return: the bytes sent, and the seconds until the answer (or until
        waiting for it gave up).
    """
    start = time.monotonic()
    sent = 0
    for byte in data:
        readable, _, _ = select.select([sock.sock], [], [], interval)
        if readable:
            break
        sock.sock.sendall(bytes((byte,)))
        sent += 1
    else:
        select.select([sock.sock], [], [], interval * 20)
    return sent, time.monotonic() - start


def _blocking_connect(port: int, sslContext: ssl.SSLContext | None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if sslContext is not None:
        sock = sslContext.wrap_socket(sock, server_hostname="localhost")
    return sock


class RawSockets:
    """
    The L{raw} fixture: opens L{RawSocket}s, and remembers them so they are
    closed at teardown.
    """

    def __init__(self) -> None:
        self.sockets: list[RawSocket] = []

    async def connect(self, port: int, sslContext: ssl.SSLContext | None = None) -> RawSocket:
        """
        A L{RawSocket} connected to C{127.0.0.1:port} (over TLS with
        C{sslContext}).
        """
        sock = await within(deferToThread(_blocking_connect, port, sslContext))
        rawSocket = RawSocket(sock)
        self.sockets.append(rawSocket)
        return rawSocket

    async def upgrade(
        self,
        port: int,
        path: str = "/echo",
        extra: Iterable[tuple[str, str]] = (),
        sslContext: ssl.SSLContext | None = None,
    ) -> RawSocket:
        """
        A connected L{RawSocket} that completed the opening handshake (the
        C{101} and its accept key checked).
        """
        rawSocket = await self.connect(port, sslContext)
        request, key = keyed_upgrade(port, path, extra=extra)
        await rawSocket.send(request)
        response = await rawSocket.read_response()
        assert response.status == 101, response.raw
        assert response.headers["sec-websocket-accept"] == accept_key_for(key)
        return rawSocket


@pytest_twisted.async_yield_fixture
async def raw() -> Any:
    """
    Raw-socket helpers (L{RawSockets}), closed at teardown:

      - C{await raw.connect(port)} returns a connected L{RawSocket};
      - C{await raw.upgrade(port, path="/echo", extra=())} also performs
        the opening handshake, checks the C{101} and its accept key, and
        returns the L{RawSocket}.
    """
    sockets = RawSockets()
    yield sockets
    for rawSocket in sockets.sockets:
        rawSocket.close()
