"""
Coverage-guided fuzzing of txpulse's sans-IO core with atheris (libFuzzer).

Each input picks a side (server or client), limits, whether
permessage-deflate is negotiated and a chunking, and the rest is the byte
stream fed to a L{txpulse.core.connection.Connection} in those chunks, the
way the wire feeds it. The target checks what C{tests/core/test_fuzz.py}
checks with hypothesis, at every step:

  - nothing raises;
  - the receive buffer never holds more than one frame within the limits
    (plus its header);
  - no delivered message is larger than C{max_message_size};
  - no event is delivered after the connection failed;
  - the end state is valid: open, closed after echoing the peer's close,
    or failed with 1002, 1007 or 1009, CLOSED and asking for the transport
    to be closed, its close frame the last one written.

atheris is not a test dependency (it is a native wheel, not available
everywhere). To run the target by hand, from the repository root::

    python -m venv /tmp/fuzzenv
    /tmp/fuzzenv/bin/pip install atheris
    /tmp/fuzzenv/bin/pip install --no-deps -e .   # or: export PYTHONPATH=src plus the project's dependencies
    mkdir -p /tmp/fuzz-corpus
    /tmp/fuzzenv/bin/python fuzz/fuzz_core.py --write-seeds /tmp/fuzz-corpus
    /tmp/fuzzenv/bin/python fuzz/fuzz_core.py /tmp/fuzz-corpus -max_total_time=30

(the project's virtualenv works too: C{.venv/bin/pip install atheris}).
Any libFuzzer flag can follow (C{-max_total_time}, C{-runs}, C{-jobs},
C{-max_len}). A crash writes C{crash-<sha1>} in the current directory; replay
it with C{python fuzz/fuzz_core.py crash-<sha1>}.
"""

from __future__ import annotations

import os
import sys
import zlib

import atheris

# Only the core is instrumented (importing it loads the whole package).
with atheris.instrument_imports(include=["txpulse.core"]):
    from txpulse.core.connection import Close, Connection, Ping, Pong, Side, State
    from txpulse.core.deflate import Deflate, DeflateParameters

#: The close codes a peer's bytes may make the core fail with.
FAILURE_CODES = (1002, 1007, 1009)
#: The longest frame header (2 + 8 + 4 bytes) and the longest control frame.
MAX_HEADER = 14
MAX_CONTROL = 125

MESSAGE_LIMITS = [None, 1 << 20, 64, 1000, 130]
FRAME_LIMITS = [None, 16, 130, 1000]


def _buffer_bound(conn: Connection) -> int:
    return max(min(conn.max_frame_size, conn.max_message_size), MAX_CONTROL) + MAX_HEADER


def _frames(output: bytes) -> list[tuple[int, bytes]]:
    """
    The first byte and unmasked payload of each frame in C{output}.
    """
    pos, frames = 0, []
    while pos < len(output):
        b0, b1 = output[pos], output[pos + 1]
        n = b1 & 0x7F
        pos += 2
        if n == 126:
            n = int.from_bytes(output[pos : pos + 2], "big")
            pos += 2
        elif n == 127:
            n = int.from_bytes(output[pos : pos + 8], "big")
            pos += 8
        key = b"\0\0\0\0"
        if b1 & 0x80:
            key = output[pos : pos + 4]
            pos += 4
        frames.append((b0, bytes(c ^ key[i % 4] for i, c in enumerate(output[pos : pos + n]))))
        pos += n
    return frames


def TestOneInput(data: bytes) -> None:
    """
    One fuzz case (see the module docstring).
    """
    fdp = atheris.FuzzedDataProvider(data)
    side = Side.CLIENT if fdp.ConsumeBool() else Side.SERVER
    max_message = fdp.PickValueInList(MESSAGE_LIMITS)
    max_frame = fdp.PickValueInList(FRAME_LIMITS)
    deflate = None
    if fdp.ConsumeBool():
        params = DeflateParameters(
            server_no_context_takeover=fdp.ConsumeBool(),
            client_no_context_takeover=fdp.ConsumeBool(),
            server_max_window_bits=fdp.ConsumeIntInRange(9, 15),
            client_max_window_bits=fdp.ConsumeIntInRange(9, 15),
        )
        deflate = Deflate(params, is_server=side is Side.SERVER)
    chunks = [fdp.ConsumeIntInRange(1, 257) for _ in range(fdp.ConsumeIntInRange(1, 6))]
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())

    conn = Connection(side, max_message_size=max_message, max_frame_size=max_frame, deflate=deflate)
    output = bytearray()
    pings = 0
    failed = False
    pos = i = 0
    while pos < len(stream):
        size = chunks[i % len(chunks)]
        i += 1
        conn.receive_data(stream[pos : pos + size])
        pos += size
        events = conn.events_received()
        for chunk in conn.data_to_send():
            output += chunk
        if failed and events:
            raise AssertionError("events delivered after the connection failed")
        for event in events:
            if isinstance(event, str):
                if len(event.encode("utf-8", "surrogatepass")) > conn.max_message_size:
                    raise AssertionError("text message over the limit")
            elif isinstance(event, bytes):
                if len(event) > conn.max_message_size:
                    raise AssertionError("binary message over the limit")
            elif isinstance(event, Ping):
                pings += 1
            elif not isinstance(event, (Pong, Close)):
                raise AssertionError(f"unexpected event {event!r}")
        buffered = len(conn._buf or b"")
        if buffered > _buffer_bound(conn):
            raise AssertionError(f"receive buffer holds {buffered} bytes, over {_buffer_bound(conn)}")
        if conn.error is not None:
            failed = True
            if conn.state is not State.CLOSED or not conn.should_close_transport():
                raise AssertionError("failed, but not CLOSED and asking for the transport to close")

    frames = _frames(bytes(output))
    last = frames[-1] if frames else None
    if sum(1 for first, _ in frames if first == 0x8A) != pings:
        raise AssertionError("not every ping was answered with a pong")
    error = conn.error
    if error is not None:
        if error.closeCode not in FAILURE_CODES:
            raise AssertionError(f"failed with close code {error.closeCode}")
        if conn.close_received is None:
            if last is None or last[0] != 0x88 or int.from_bytes(last[1][:2], "big") != error.closeCode:
                raise AssertionError("the failure's close frame is not the last frame written")
    elif conn.close_received is not None:
        if conn.state is not State.CLOSED or last is None or last[0] != 0x88:
            raise AssertionError("the peer's close was not echoed")
    elif conn.state is not State.OPEN or conn.should_close_transport():
        raise AssertionError("no close and no failure, yet not open")


def _seeds() -> list[bytes]:
    """
    A few valid streams to start from: masked client frames (text,
    fragments around a ping, binary, compressed, close) behind the option
    bytes the target consumes first.
    """
    key = b"\x37\xfa\x21\x3d"

    def frame(first: int, payload: bytes, masked: bool = True) -> bytes:
        n = len(payload)
        mask = 0x80 if masked else 0
        if n < 126:
            head = bytes((first, mask | n))
        elif n < 0x10000:
            head = bytes((first, mask | 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((first, mask | 127)) + n.to_bytes(8, "big")
        if not masked:
            return head + payload
        return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))

    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    compressed = (compressor.compress(b"hello " * 30) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    streams = [
        frame(0x81, "héllo".encode()) + frame(0x82, bytes(range(200))),
        frame(0x01, b"frag") + frame(0x89, b"ping") + frame(0x80, b"ment") + frame(0x88, b"\x03\xe8bye"),
        frame(0xC1, compressed) + frame(0x8A, b"pong"),
        frame(0x81, b"server text", masked=False) + frame(0x88, b"\x03\xe9", masked=False),
    ]
    # The leading bytes are consumed by the FuzzedDataProvider for the options;
    # libFuzzer mutates them like the rest.
    return [bytes(16) + s for s in streams] + [b"\x01" * 16 + s for s in streams]


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        os.makedirs(sys.argv[2], exist_ok=True)
        for n, seed in enumerate(_seeds()):
            with open(os.path.join(sys.argv[2], f"seed-{n}"), "wb") as f:
                f.write(seed)
        return
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
