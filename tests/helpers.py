"""
Shared test helpers: building client frames, driving a server core, fakes
for the Twisted side (transports, applications, hub subscribers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from wsproto.frame_protocol import Frame, FrameProtocol

from txpulse.core.connection import Connection, Side, State
from txpulse.core.frames import Opcode, encode_frame

#: A fixed masking key, so frames are reproducible byte for byte.
KEY = b"\x37\xfa\x21\x3d"


def client_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False, key: bytes = KEY) -> bytes:
    """
    A masked frame as a client sends it.
    """
    return encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask_key=key)


def mask(payload: bytes, key: bytes = KEY) -> bytes:
    """
    C{payload} XORed with C{key} (RFC 6455 §5.3), by hand: independent of
    txpulse, and fast enough for multi-megabyte payloads.
    """
    n = len(payload)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def raw_frame(
    first_byte: int, payload: bytes = b"", *, masked: bool = True, length_bytes: bytes | None = None, key: bytes = KEY
) -> bytes:
    """
    Hand-build a frame, possibly malformed: any first byte, any length
    encoding (C{length_bytes} replaces the length field, including the 7-bit
    part), masked with C{key} or not.
    """
    mask_bit = 0x80 if masked else 0
    if length_bytes is None:
        n = len(payload)
        if n < 126:
            length_bytes = bytes((n,))
        elif n < 65536:
            length_bytes = bytes((126,)) + n.to_bytes(2, "big")
        else:
            length_bytes = bytes((127,)) + n.to_bytes(8, "big")
    head = bytes((first_byte, length_bytes[0] | mask_bit)) + length_bytes[1:]
    if not masked:
        return head + payload
    return head + key + mask(payload, key)


def close_payload(code: int, reason: str = "") -> bytes:
    """
    The payload of a close frame: the code, then the UTF-8 reason.
    """
    return code.to_bytes(2, "big") + reason.encode("utf-8")


def server_with(data: bytes, **kwargs: object) -> Connection:
    """
    A server core fed C{data} in one piece.
    """
    conn = Connection(Side.SERVER, **kwargs)  # type: ignore[arg-type]
    conn.receive_data(data)
    return conn


def close_code_sent(conn: Connection, *, after_data: bool = False) -> int | None:
    """
    The code of the close frame a server core queued, parsed from its
    output; with C{after_data}, the (unmasked) frames queued before it are
    skipped, otherwise the close must come first.
    """
    out = b"".join(conn.data_to_send())
    assert out, "nothing was queued"
    while after_data and out and out[0] != 0x88:
        length = out[1] & 0x7F
        start = 2 if length < 126 else 4 if length == 126 else 10
        if length == 126:
            length = int.from_bytes(out[2:4], "big")
        elif length == 127:
            length = int.from_bytes(out[2:10], "big")
        out = out[start + length :]
    assert out, "no close frame was queued"
    assert out[0] == 0x88, f"expected a close frame, got {out[:2].hex()}"
    return int.from_bytes(out[2:4], "big") if out[1] >= 2 else None


def assert_failed(conn: Connection, code: int, *, after_data: bool = False) -> None:
    """
    The server core failed the connection with C{code}: the close frame went
    out (see L{close_code_sent} for C{after_data}), the transport must
    close, and later input is ignored.
    """
    assert close_code_sent(conn, after_data=after_data) == code
    assert conn.should_close_transport()
    assert conn.state is State.CLOSED
    assert conn.error is not None and conn.error.closeCode == code
    conn.receive_data(client_frame(Opcode.TEXT, b"ignored"))
    assert "ignored" not in conn.events_received()


# -- Twisted-side helpers ------------------------------------------------------


class RecordingApp:
    """
    An application protocol (Twisted's C{WebSocketProtocol} shape) that
    records everything it is told; optionally echoes.
    """

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.transport: Any = None
        self.events: list[tuple[str, Any]] = []
        self.lost: Failure | None = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport
        self.events.append(("started", None))

    def negotiationFinished(self) -> None:
        self.events.append(("finished", None))

    def textMessageReceived(self, message: str) -> None:
        self.events.append(("text", message))
        if self.echo:
            self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        self.events.append(("bytes", data))
        if self.echo:
            self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        self.events.append(("pong", payload))

    def connectionLost(self, reason: Failure) -> None:
        self.lost = reason

    def messages(self) -> list[tuple[str, Any]]:
        return [e for e in self.events if e[0] in ("text", "bytes")]


class CountingTransport(StringTransport):
    """
    A L{StringTransport} that counts write calls and records aborts.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writeCalls = 0
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writeCalls += 1
        super().write(data)

    def writeSequence(self, data: Any) -> None:
        self.writeCalls += 1
        StringTransport.write(self, b"".join(data))

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()


def server_frames(data: bytes) -> list[Frame]:
    """
    Parse what a server wrote, with wsproto's frame parser as the oracle.
    """
    parser = FrameProtocol(client=True, extensions=[])
    parser.receive_bytes(data)
    return list(parser.received_frames())


@contextmanager
def captured_logs(lines: list[str] | None = None) -> Iterator[list[str]]:
    """
    Collect the text of every log event emitted inside the block (into
    C{lines}, if given: a list subclass with search helpers, say).
    """
    collected: list[str] = [] if lines is None else lines

    def observer(event: LogEvent) -> None:
        text = formatEvent(event) or ""
        if "log_failure" in event:
            text += "\n" + event["log_failure"].getTraceback()
        collected.append(text)

    globalLogPublisher.addObserver(observer)
    try:
        yield collected
    finally:
        globalLogPublisher.removeObserver(observer)


class FakeSubscriber:
    """
    What the hub delivers to (a L{txpulse.pubsub.hub.Subscriber}), without a
    connection: records the frames it was sent, honours the batching
    contract (C{queueFrame} then C{flush}), can pretend to be a slow reader
    (set C{writeBacklog}) or closed.
    """

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.queued: list[bytes] = []
        self.flushes = 0
        self.closed: tuple[int, str] | None = None
        self.writeBacklog = 0

    def sendFrame(self, frame: bytes) -> None:
        self.flush()
        self.frames.append(frame)

    def queueFrame(self, frame: bytes) -> bool:
        if self.closed is not None:
            return False
        self.queued.append(frame)
        return len(self.queued) == 1

    def flush(self) -> None:
        self.flushes += 1
        self.frames += self.queued
        self.queued = []

    def loseConnection(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)

    def abortConnection(self) -> None:
        self.closed = (1006, "")

    def isOpen(self) -> bool:
        return self.closed is None

    def texts(self) -> list[str]:
        """
        The text of every message written, as sent on the wire.
        """
        return [str(f.payload) for frame in self.frames for f in server_frames(frame)]

    def messages(self) -> list[Any]:
        """
        Every message written, parsed as JSON.
        """
        return [json.loads(text) for text in self.texts()]
