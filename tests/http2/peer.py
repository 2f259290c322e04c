"""
An independent HTTP/2 peer for the RFC 8441 tests: the C{h2} package's
client state machine over a blocking TLS socket (the standard library's
C{ssl}, trusting only the test CA), no txpulse code on its side. WebSocket
frames are built by hand (L{tests.support.frames}) and what the server sent
is parsed by wsproto.

Its methods block: tests call them in a worker thread (L{H2Peer.call}), so
the reactor keeps serving meanwhile.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import h2.config
import h2.connection
import h2.events
import h2.settings
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from ..support.frames import server_frames
from ..support.waits import WAIT

T = TypeVar("T")


@dataclass(frozen=True)
class Frame:
    """
    A complete frame the server sent (control frames' payloads as wsproto
    parses them: a close's is C{(code, reason)}).
    """

    opcode: Any
    payload: Any


class H2Peer:
    """
    One HTTP/2 client connection to 127.0.0.1:C{port}.

    @ivar events: every h2 event received, in order.
    @ivar data: the DATA received, by stream.
    @ivar stalled: streams whose DATA is not acknowledged (their window is
        not given back: the peer "stops reading" them); the connection's
        window is given back all the same, so other streams flow on.
    """

    def __init__(self, port: int, caFile: str, alpn: Sequence[str] = ("h2", "http/1.1")) -> None:
        context = ssl.create_default_context(cafile=caFile)
        context.set_alpn_protocols(list(alpn))
        raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        self.port = port
        self.alpn = self.sock.selected_alpn_protocol()
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.events: list[Any] = []
        self.data: dict[int, bytearray] = defaultdict(bytearray)
        self.stalled: set[int] = set()
        self.closed = False
        if self.alpn == "h2":
            self.conn.initiate_connection()
            self.flush()

    @staticmethod
    def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """
        Run a blocking method in a worker thread.
        """
        return deferToThread(function, *args, **kwargs)

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, until: Callable[[], object], what: str, seconds: float = WAIT) -> None:
        """
        Read and process frames until C{until()} is true.

        @raise AssertionError: after C{seconds}, naming C{what}.
        """
        deadline = time.monotonic() + seconds
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; events: {self.events[-8:]}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                self.closed = True
                if not until():
                    raise AssertionError(f"connection closed while waiting for {what}; events: {self.events[-8:]}")
                return
            for event in self.conn.receive_data(chunk):
                self.events.append(event)
                if isinstance(event, h2.events.DataReceived):
                    self.data[event.stream_id] += event.data
                    if event.stream_id in self.stalled:
                        self.conn.increment_flow_control_window(event.flow_controlled_length)
                    else:
                        self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.flush()

    # -- what the server said --

    def settings(self) -> dict[int, int]:
        """
        The server's SETTINGS (once its first SETTINGS frame arrived).
        """
        self.pump(lambda: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in self.events), "SETTINGS")
        return {key: value for key, value in self.conn.remote_settings.items()}

    def response(self, stream: int) -> dict[bytes, bytes]:
        """
        The response head on C{stream} (pseudo-headers included).
        """

        def found() -> Any:
            return next(
                (e for e in self.events if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream), None
            )

        self.pump(found, f"a response on stream {stream}")
        return dict(found().headers)

    def ended(self, stream: int) -> bool:
        """
        Whether the server ended (END_STREAM) or reset C{stream}.
        """
        return any(
            isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == stream for e in self.events
        )

    def reset(self, stream: int) -> Any:
        """
        The server's RST_STREAM on C{stream} (its C{StreamReset} event).
        """

        def found() -> Any:
            return next(
                (e for e in self.events if isinstance(e, h2.events.StreamReset) and e.stream_id == stream), None
            )

        self.pump(found, f"RST_STREAM on stream {stream}")
        return found()

    def terminated(self) -> Any:
        """
        The server's GOAWAY (its C{ConnectionTerminated} event).
        """

        def found() -> Any:
            return next((e for e in self.events if isinstance(e, h2.events.ConnectionTerminated)), None)

        self.pump(found, "GOAWAY")
        return found()

    def frames(self, stream: int, count: int, seconds: float = WAIT) -> list[Any]:
        """
        The first C{count} complete WebSocket frames the server sent on
        C{stream} (wsproto hands a large frame over in pieces: they are
        joined, as C{(opcode, payload)} L{Frame}s).
        """

        def complete() -> list[Any]:
            frames, pieces = [], []
            for piece in server_frames(bytes(self.data[stream])):
                pieces.append(piece)
                if piece.frame_finished:
                    payload = piece.payload
                    if len(pieces) > 1:
                        payload = type(payload)().join(p.payload for p in pieces)
                    frames.append(Frame(pieces[0].opcode, payload))
                    pieces = []
            return frames

        self.pump(lambda: len(complete()) >= count, f"{count} frames on stream {stream}", seconds)
        return complete()[:count]

    # -- what we send --

    def connect(
        self,
        path: str = "/echo",
        *,
        protocol: bytes | None = b"websocket",
        version: bytes | None = b"13",
        extra: Sequence[tuple[bytes, bytes]] = (),
        validate: bool = True,
    ) -> int:
        """
        Open a stream with an extended CONNECT (RFC 8441 §4) and return its
        id; C{protocol=None} leaves out C{:protocol} (then C{validate=False}
        lets h2 send what it would refuse to).
        """
        stream = self.conn.get_next_available_stream_id()
        headers = [(b":method", b"CONNECT")]
        if protocol is not None:
            headers.append((b":protocol", protocol))
        headers += [
            (b":scheme", b"https"),
            (b":path", path.encode()),
            (b":authority", f"localhost:{self.port}".encode()),
        ]
        if version is not None:
            headers.append((b"sec-websocket-version", version))
        headers += list(extra)
        self.conn.config.validate_outbound_headers = validate
        try:
            self.conn.send_headers(stream, headers)
        finally:
            self.conn.config.validate_outbound_headers = True
        self.flush()
        return stream

    def get(self, path: str) -> int:
        """
        Send a plain GET on a new stream; return its id.
        """
        stream = self.conn.get_next_available_stream_id()
        headers = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":path", path.encode()),
            (b":authority", f"localhost:{self.port}".encode()),
        ]
        self.conn.send_headers(stream, headers, end_stream=True)
        self.flush()
        return stream

    def body(self, stream: int) -> bytes:
        """
        The whole body of a response on C{stream}.
        """
        self.pump(lambda: self.ended(stream), f"the end of stream {stream}")
        return bytes(self.data[stream])

    def send(self, stream: int, data: bytes, end: bool = False) -> None:
        """
        Send C{data} on C{stream} in DATA frames, as the stream's send
        window allows (waiting for the server to open it).
        """
        view = memoryview(data)
        while True:
            room = min(self.conn.local_flow_control_window(stream), self.conn.max_outbound_frame_size)
            if room <= 0 and view:
                self.pump(lambda: self.conn.local_flow_control_window(stream) > 0, f"window on stream {stream}")
                continue
            chunk, view = view[:room], view[room:]
            self.conn.send_data(stream, bytes(chunk), end_stream=end and not view)
            self.flush()
            if not view:
                return

    def resetStream(self, stream: int) -> None:
        self.conn.reset_stream(stream)
        self.flush()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def http11_get(port: int, caFile: str, path: str) -> tuple[str, bytes]:
    """
    A plain HTTP/1.1 GET over TLS (ALPN offering only C{http/1.1}): the
    negotiated protocol and the raw response.
    """
    context = ssl.create_default_context(cafile=caFile)
    context.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
            return str(sock.selected_alpn_protocol()), response


#: RFC 8441 §3.
ENABLE_CONNECT_PROTOCOL = h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL
