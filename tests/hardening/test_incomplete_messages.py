"""
What incomplete messages cost a live C{twistd -n txpulse --deflate}, in RSS.

The attack (reported HIGH): each connection sends one compressed first
fragment (RSV1 set, FIN clear) of about 1 KiB that inflates to just under
C{maxMessageSize}, then nothing more; the inflated bytes wait in the
message assembler for a rest that never comes. Before the fix, 200 such
connections (207 KB sent) grew the server by about 200 MiB and 1,000 by
1.2 GiB, all of them kept open. Now every mount shares one
L{txpulse.core.assembly.AssemblyBudget} (C{--max-incomplete-size}): the
connections that fit in it are kept, the others are closed with 1013, the
RSS growth stays near the budget, a bystander's echoes stay fast, and the
budget is given back when the connections end.
"""

from __future__ import annotations

import socket
import sys
import time
import zlib
from pathlib import Path

import pytest

from txpulse.core.frames import Opcode

from ..support.frames import client_frame
from ..support.processes import TwistdServer, rss
from ..support.rawsocket import blocking_upgrade

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")

#: Connections that each send one compressed first fragment.
CONNECTIONS = 200

#: The server's C{--max-incomplete-size} (the default is 64 MiB).
BUDGET = 16 << 20

#: What each first fragment inflates to: just under the 1 MiB default
#: C{maxMessageSize}, as in the report.
INFLATED = (1 << 20) - 1024

#: How many such fragments fit in L{BUDGET}.
HELD = BUDGET // INFLATED

#: RSS growth allowed on top of L{BUDGET}: the per-connection state of
#: L{CONNECTIONS} compressed connections (an inflater each), the transient
#: inflated fragments of the refused ones, allocator arenas (measured: about
#: 4 MiB).
ALLOWANCE = 16 << 20

#: The slowest bystander round trip tolerated while the budget is full.
MAX_LATENCY = 0.25


def bomb_fragment() -> bytes:
    """
    The payload of a compressed first fragment (12-bit window, as agreed)
    that inflates to L{INFLATED} bytes: about 1 KiB.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -12)
    return compressor.compress(b"\0" * INFLATED) + compressor.flush(zlib.Z_SYNC_FLUSH)


def upgrade(port: int, *, deflate: bool) -> socket.socket:
    """
    Open a WebSocket to C{/echo} on a blocking socket, offering
    permessage-deflate (with C{client_max_window_bits}, as Chromium does)
    when C{deflate} is set.
    """
    offer = [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")] if deflate else []
    sock, head = blocking_upgrade(port, extra=offer, timeout=10)
    assert (b"permessage-deflate" in head) is deflate, head
    return sock


def read_exactly(sock: socket.socket, n: int) -> bytes:
    """
    Read exactly C{n} bytes from C{sock}.
    """
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def next_frame(sock: socket.socket) -> tuple[int, bytes]:
    """
    Read one small unmasked server frame: its opcode and payload.
    """
    b0, b1 = read_exactly(sock, 2)
    assert b1 < 126, b1
    return b0 & 0x0F, read_exactly(sock, b1)


def send_bomb(port: int, fragment: bytes) -> tuple[socket.socket, int | None]:
    """
    Open a compressed connection, send C{fragment} as a first fragment then a
    ping, and read the answer: the pong (the fragment is being held: C{None})
    or the close frame the server failed the connection with (its code).
    """
    sock = upgrade(port, deflate=True)
    sock.sendall(client_frame(Opcode.BINARY, fragment, fin=False, rsv1=True) + client_frame(Opcode.PING, b"sync"))
    opcode, payload = next_frame(sock)
    if opcode == Opcode.PONG:
        assert payload == b"sync"
        return sock, None
    assert opcode == Opcode.CLOSE, opcode
    return sock, int.from_bytes(payload[:2], "big")


def round_trip(sock: socket.socket, n: int) -> float:
    """
    Send a small text message to the echo and wait for it; the seconds it
    took.
    """
    payload = f"bystander {n}".encode()
    start = time.monotonic()
    sock.sendall(client_frame(Opcode.TEXT, payload))
    assert next_frame(sock) == (Opcode.TEXT, payload)
    return time.monotonic() - start


def test_incomplete_compressed_messages_are_bounded_process_wide(tmp_path: Path) -> None:
    """
    L{CONNECTIONS} compressed connections each send a 1 KiB first fragment
    that inflates to almost 1 MiB, and nothing more, to a live C{twistd -n
    txpulse --deflate --max-incomplete-size 16M}: the first L{HELD} are kept
    (the pings after their fragments are answered), every other one is
    closed with 1013 and the server logs why; the server's RSS grows by at
    most L{BUDGET} plus L{ALLOWANCE} (before the fix: about 200 MiB); a
    bystander's echoes stay under L{MAX_LATENCY}. Once those connections
    close, their charge is given back: L{HELD} new ones are kept again.
    """
    server = TwistdServer(
        tmp_path / "twistd.log",
        "--deflate",
        "--ping-interval=0",
        f"--max-incomplete-size={BUDGET}",
        "--max-connections-per-address=0",
    )
    fragment = bomb_fragment()
    assert len(fragment) < 2048
    with server:
        assert server.process is not None
        pid = server.process.pid
        bystander = upgrade(server.port, deflate=False)
        round_trip(bystander, 0)
        time.sleep(0.2)
        base = peak = rss(pid)
        bombs: list[socket.socket] = []
        codes = []
        try:
            for _ in range(CONNECTIONS):
                sock, code = send_bomb(server.port, fragment)
                bombs.append(sock)
                codes.append(code)
                peak = max(peak, rss(pid))
            assert codes == [None] * HELD + [1013] * (CONNECTIONS - HELD)
            slowest = max(round_trip(bystander, n) for n in range(1, 21))
            assert slowest < MAX_LATENCY, slowest
            peak = max(peak, rss(pid))
            assert peak - base <= BUDGET + ALLOWANCE, f"RSS grew {(peak - base) / 2**20:.1f} MiB"
        finally:
            for sock in bombs:
                sock.close()
        time.sleep(0.5)
        after = rss(pid)
        again = []
        try:
            for _ in range(HELD):
                sock, code = send_bomb(server.port, fragment)
                again.append(sock)
                assert code is None, "the budget was not given back when the connections ended"
        finally:
            for sock in again:
                sock.close()
        assert round_trip(bystander, 99) < MAX_LATENCY
        bystander.close()
    log = (tmp_path / "twistd.log").read_text()
    assert log.count("incomplete messages over the server's budget (closing with 1013)") == CONNECTIONS - HELD
    sys.stdout.write(
        f"\n{CONNECTIONS} deflate bombs: RSS {base >> 20} MiB, peak +{(peak - base) / 2**20:.1f} MiB, "
        f"after close +{(after - base) / 2**20:.1f} MiB; bystander slowest {slowest * 1000:.1f} ms\n"
    )
