"""
What a peer that sends and never reads costs a live C{twistd -n txpulse},
measured where it hurts: the server process's resident memory (C{VmRSS} of
C{/proc/PID/status}), not a counter.

Each flooding peer first sends large pings (125-byte payloads: the kernel's
buffers on both sides fill quickly), then 6-byte pings, never reading the
pongs. Were the server to keep reading it, every 2-byte pong would be a
Python object of some 60 bytes queued behind the full socket (issue 12: 54
to 293 MiB for one peer). Instead the server joins small replies into one
buffer, and stops reading a peer once what it queued for it since its
write buffer filled passes half of C{maxWriteBuffer} (not as soon as the
buffer fills: two peers streaming both ways would deadlock, see
L{tests.integration.test_duplex}); TCP's flow control then blocks the flood
in the kernel, and what the server holds per peer stays under
L{PER_PEER_BOUND}. A well-behaved bystander's round trips stay fast once
the floods are held back.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from txpulse.wire.tcp import LARGE_READ_SIZE

from ..support.frames import raw_frame
from ..support.processes import TwistdServer, rss
from ..support.rawsocket import blocking_upgrade

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")

#: The server's C{--max-write-buffer} in these tests (1 MiB; the default is
#: 8 MiB): small, so that the old behaviour (read on, queue every pong) hits
#: it within a second or two.
MAX_WRITE_BUFFER = 1 << 20

#: What one non-reading peer may make the server hold: Twisted's pause
#: threshold (which is the read size, L{LARGE_READ_SIZE} for a peer that
#: fills every read) and the replies to the read that crossed it (no larger
#: than the read), then C{maxWriteBuffer}: the replies to what is read on
#: while the buffer is full stop at half of it (plus those of the read that
#: crossed that mark, again no larger than a read), and the rest is for what
#: the application itself sends (nothing here: echo and pongs only answer
#: the peer); past it the connection is aborted.
PER_PEER_BOUND = 2 * LARGE_READ_SIZE + MAX_WRITE_BUFFER

#: RSS growth allowed whatever the peers do: allocator arenas and the
#: transient objects of parsing full reads (measured: 6-9 MiB).
ALLOWANCE = 12 << 20

#: The slowest bystander round trip tolerated once the floods are held back.
MAX_LATENCY = 0.25


def upgrade(port: int, path: str = "/echo", receiveBuffer: int | None = None) -> socket.socket:
    """
    Open a WebSocket to C{path} on a blocking socket (its receive buffer
    shrunk to C{receiveBuffer} first, if given) and return it.
    """
    return blocking_upgrade(port, path, receiveBuffer=receiveBuffer)[0]


class PingFlood(threading.Thread):
    """
    A peer that sends pings as fast as the server takes them and never
    reads: large ones first (up to C{largeBytes}), then 6-byte ones.

    @ivar sent: bytes sent so far.
    @ivar lastProgress: when a send last went through (monotonic).
    @ivar dropped: whether the server dropped the connection.
    """

    LARGE = raw_frame(0x89, b"p" * 125) * 512
    SMALL = raw_frame(0x89, b"") * 10000

    def __init__(self, port: int, largeBytes: int = 3 << 20) -> None:
        super().__init__(daemon=True)
        self.sock = upgrade(port, receiveBuffer=4096)
        self.sock.settimeout(0.2)
        self.largeBytes = largeBytes
        self.sent = 0
        self.lastProgress = time.monotonic()
        self.dropped = False
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            chunk = self.LARGE if self.sent < self.largeBytes else self.SMALL
            try:
                sent = self.sock.send(chunk)
            except TimeoutError:
                continue
            except OSError:
                self.dropped = True
                return
            self.sent += sent
            self.lastProgress = time.monotonic()

    def blocked(self, seconds: float = 1.0) -> bool:
        """
        Whether the server has not taken a byte from this peer for
        C{seconds}.
        """
        return time.monotonic() - self.lastProgress > seconds

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
        self.sock.close()


def round_trip(sock: socket.socket, n: int) -> float:
    """
    Send a small text message to the echo and wait for it; return the
    seconds it took.
    """
    payload = f"bystander {n}".encode()
    start = time.monotonic()
    sock.sendall(raw_frame(0x81, payload))
    expected = bytes((0x81, len(payload))) + payload
    got = b""
    while len(got) < len(expected):
        chunk = sock.recv(len(expected) - len(got))
        assert chunk, "the bystander was disconnected"
        got += chunk
    assert got == expected
    return time.monotonic() - start


@pytest.mark.parametrize("peers", [1, 4])
def test_non_reading_ping_floods_cost_at_most_the_write_buffer_bound_in_rss(tmp_path: Path, peers: int) -> None:
    """
    C{peers} connections flood a live C{twistd -n txpulse} (C{/echo},
    C{--max-write-buffer} 1 MiB, keepalive off) with pings and never read.
    The server stops reading each of them once the pongs queued behind its
    full write buffer pass half of C{maxWriteBuffer}: every flood ends up
    blocked by TCP within seconds (none is dropped: nothing needs to be),
    the server's RSS grows by at most
    C{peers * PER_PEER_BOUND} plus a fixed L{ALLOWANCE} (before the fix: 45
    MiB for one peer in 4 s, dropped at the limit, 294 MiB for four in
    20 s), it is not higher after they close, and a bystander's round trips
    stay under L{MAX_LATENCY} while the floods are held back.
    """
    server = TwistdServer(tmp_path / "twistd.log", f"--max-write-buffer={MAX_WRITE_BUFFER}", "--ping-interval=0")
    with server:
        assert server.process is not None
        pid = server.process.pid
        bystander = upgrade(server.port)
        round_trip(bystander, 0)
        time.sleep(0.2)
        base = peak = rss(pid)
        floods = [PingFlood(server.port) for _ in range(peers)]
        try:
            for flood in floods:
                flood.start()
            deadline = time.monotonic() + 20
            while not all(flood.blocked() or flood.dropped for flood in floods):
                peak = max(peak, rss(pid))
                assert peak - base <= ALLOWANCE + peers * PER_PEER_BOUND, (
                    f"RSS grew {(peak - base) >> 20} MiB with {peers} flooding peer(s)"
                )
                assert time.monotonic() < deadline, [flood.sent for flood in floods]
                time.sleep(0.05)
            assert not any(flood.dropped for flood in floods)
            # Each peer got past the large pings: it was small pings the
            # server stopped reading.
            assert all(flood.sent > flood.largeBytes for flood in floods), [flood.sent for flood in floods]
            slowest = max(round_trip(bystander, n) for n in range(1, 21))
            assert slowest < MAX_LATENCY, slowest
            held = rss(pid)
            peak = max(peak, held)
            assert peak - base <= ALLOWANCE + peers * PER_PEER_BOUND, (peak - base) >> 20
        finally:
            for flood in floods:
                flood.stop()
        time.sleep(0.5)
        after = rss(pid)
        assert after - base <= ALLOWANCE, (after - base) >> 20
        assert round_trip(bystander, 99) < MAX_LATENCY
        bystander.close()
        sys.stdout.write(
            f"\n{peers} peer(s): RSS {base >> 20} MiB, peak +{(peak - base) / 2**20:.1f} MiB, "
            f"after close +{(after - base) / 2**20:.1f} MiB; bystander slowest {slowest * 1000:.1f} ms\n"
        )
