"""
The protocol cores alone, without sockets or a reactor: txpulse's sans-IO
L{txpulse.core.connection.Connection} against wsproto's C{WSConnection}
(what Twisted's C{twisted.web.websocket} runs on), both answering the same
client bytes the way an echo server does. This is where a change to the
parser or the encoder shows first, free of the kernel's and the reactor's
share (which C{bench/run.py} includes), and where pyinstrument's call tree
says which function the time goes to.

    .venv/bin/python bench/coreprofile.py                       # both cores, both scenarios
    .venv/bin/python bench/coreprofile.py --profile echo32      # plus txpulse's call tree
    .venv/bin/python bench/coreprofile.py --quick               # a few seconds (CI smoke)

Scenarios (the client's frames are built here, masked with one fixed key,
independently of either core):

  echo32   20,000 text messages of 32 bytes, fed in 64 KiB reads (what
           Twisted reads at a time); every message is answered with the same
           text, and the answers of one read are collected at its end
  echo64k  400 binary messages of 64 KiB, fed in 256 KiB reads (txpulse's
           large read size), answered likewise

Each figure is the best of C{--repeat} passes (the least disturbed one):
microseconds per message and payload MB/s one way, and the ratio
wsproto / txpulse (how many times faster txpulse's core is).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from wsproto import ConnectionType, WSConnection  # noqa: E402
from wsproto.events import AcceptConnection, BytesMessage, Message, Request, TextMessage  # noqa: E402

from txpulse.core.connection import Connection, Side  # noqa: E402

#: The masking key of every client frame (a real client picks one per frame;
#: neither core can tell).
KEY = bytes((0x37, 0xFA, 0x21, 0x3D))


@dataclass(frozen=True)
class Scenario:
    name: str
    messages: int
    size: int
    binary: bool
    read_size: int

    def reads(self) -> list[bytes]:
        """
        The client's bytes, cut into reads of C{read_size} (frames straddle
        reads, as they do on a socket).
        """
        payload = (b"x" * self.size) if self.binary else (b"m" * self.size)
        data = client_frame(0x82 if self.binary else 0x81, payload) * self.messages
        return [data[i : i + self.read_size] for i in range(0, len(data), self.read_size)]


SCENARIOS = {
    "echo32": Scenario("echo32", 20_000, 32, False, 64 << 10),
    "echo64k": Scenario("echo64k", 400, 64 << 10, True, 256 << 10),
}


def client_frame(first_byte: int, payload: bytes) -> bytes:
    """
    One masked client frame (RFC 6455 §5.2, §5.3).
    """
    n = len(payload)
    if n < 126:
        header = bytes((first_byte, 0x80 | n))
    elif n < 0x10000:
        header = bytes((first_byte, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first_byte, 0x80 | 127)) + n.to_bytes(8, "big")
    stream = (KEY * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")
    return header + KEY + masked


def echo_txpulse(reads: list[bytes]) -> int:
    """
    Answer every message with itself; return the bytes written.
    """
    conn = Connection(Side.SERVER, max_message_size=None)
    written = 0
    for data in reads:
        conn.receive_data(data)
        for event in conn.events_received():
            if isinstance(event, str):
                conn.send_text(event)
            elif isinstance(event, bytes):
                conn.send_binary(event)
        written += sum(map(len, conn.data_to_send()))
    return written


_UPGRADE = (
    b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def echo_wsproto(reads: list[bytes]) -> int:
    """
    The same with wsproto, assembling fragments of a message as
    C{twisted.web.websocket} does before answering.
    """
    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(_UPGRADE)
    for event in ws.events():
        if isinstance(event, Request):
            ws.send(AcceptConnection())
    written = 0
    parts: list[str | bytes] = []
    for data in reads:
        ws.receive_data(data)
        out = []
        for event in ws.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                parts.append(event.data)
                if event.message_finished:
                    whole = "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)  # type: ignore[arg-type]
                    parts = []
                    out.append(ws.send(Message(data=whole)))
        written += sum(map(len, out))
    return written


CORES: dict[str, Callable[[list[bytes]], int]] = {"txpulse": echo_txpulse, "wsproto": echo_wsproto}


def best_time(core: Callable[[list[bytes]], int], reads: list[bytes], repeat: int) -> tuple[float, int]:
    """
    The shortest of C{repeat} passes, in seconds, and the bytes written.
    """
    best = float("inf")
    written = 0
    for _ in range(repeat):
        started = time.perf_counter()
        written = core(reads)
        best = min(best, time.perf_counter() - started)
    return best, written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip() if __doc__ else None)
    parser.add_argument("--scenarios", default="echo32,echo64k", help="comma-separated: echo32, echo64k")
    parser.add_argument("--repeat", type=int, default=5, help="passes per figure; the fastest counts (default 5)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages, 2 passes (CI smoke)")
    parser.add_argument(
        "--profile", choices=sorted(SCENARIOS), action="append", default=[], help="print txpulse's call tree"
    )
    args = parser.parse_args()
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    repeat = 2 if args.quick else args.repeat
    print(f"protocol cores alone (Python {sys.version.split()[0]}, pid {os.getpid()}); best of {repeat} passes")
    print(f"{'scenario':<9} {'core':<8} {'us/msg':>8} {'MB/s':>8} {'wsproto/txpulse':>16}")
    for name in names:
        scenario = SCENARIOS[name]
        if args.quick:
            scenario = Scenario(name, scenario.messages // 10, scenario.size, scenario.binary, scenario.read_size)
        reads = scenario.reads()
        times = {}
        for core_name, core in CORES.items():
            seconds, written = best_time(core, reads, repeat)
            expected = scenario.messages * (len(client_frame(0x82, b"x" * scenario.size)) - 4)
            if written != expected:
                print(f"{name}: {core_name} wrote {written:,} bytes, expected {expected:,}", file=sys.stderr)
                return 1
            times[core_name] = seconds
            us = seconds / scenario.messages * 1e6
            mbs = scenario.messages * scenario.size / seconds / 1e6
            ratio = f"{times['wsproto'] / times['txpulse']:.2f}x" if core_name == "wsproto" else ""
            print(f"{name:<9} {core_name:<8} {us:>8.2f} {mbs:>8,.0f} {ratio:>16}")
    for name in args.profile:
        profile(SCENARIOS[name])
    return 0


def profile(scenario: Scenario) -> None:
    """
    Print pyinstrument's call tree of txpulse's core over C{scenario}
    (repeated until about a second has been sampled).
    """
    from pyinstrument import Profiler

    reads = scenario.reads()
    profiler = Profiler(interval=0.0002)
    profiler.start()
    started = time.perf_counter()
    while time.perf_counter() - started < 1.0:
        echo_txpulse(reads)
    profiler.stop()
    print(f"\n== txpulse's core, {scenario.name}: pyinstrument call tree")
    print(profiler.output_text(unicode=True, color=False))


if __name__ == "__main__":
    sys.exit(main())
