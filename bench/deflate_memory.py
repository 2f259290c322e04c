"""
What permessage-deflate costs a txpulse server in memory, per connection.

    .venv/bin/python bench/deflate_memory.py                      # the default grid, 200 connections
    .venv/bin/python bench/deflate_memory.py --connections 500 --sizes 64,65536
    .venv/bin/python bench/deflate_memory.py --configs 15/5,12/5 --json results.json

For every configuration (server window bits / zlib memLevel, with and without
context takeover, and a control without compression) and every message size,
it starts a fresh server process (C{WebSocketResource(EchoFactory(),
compression=DeflateSettings(...))} in a C{WebSocketSite} on 127.0.0.1),
opens --connections WebSocket connections to it with the C{websockets}
client (offering C{permessage-deflate; client_max_window_bits}, as Chromium
does), reads the server's RSS from C{/proc/PID/status}, sends one message of
that size on every connection and waits for its echo (so the server has
inflated one message and deflated one), then reads the RSS again.

It prints, per row, the server's RSS growth per connection over those
messages ("after 1 msg"), the same minus the control run without compression
at that size ("deflate cost"), and what the agreement was. The messages are
JSON-like text (seeded, so every run sends the same bytes), which compresses
about as well as real application messages do. A second table gives, for the
same configurations, the compressed size of a 16 KiB message and of 200
small chat-like messages sent in a row (where context takeover matters).

Loopback only; every server is stopped before the next starts. About 2 s per
row at 200 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: (server window bits, memLevel) rows measured by default; the client's
#: window is limited to the same number of bits (it offered to accept that).
DEFAULT_CONFIGS = ["15/8", "15/5", "13/5", "12/5", "12/4", "11/4", "10/3"]
DEFAULT_SIZES = [64, 1024, 16384, 65536]


# -- the server (a subprocess) -------------------------------------------------------


def serve(bits: int | None, memLevel: int, noTakeover: bool) -> None:
    """
    Run an echo server with the given compression settings (C{bits} None:
    compression off) on a free loopback port; print the port, then serve
    until stdin closes.
    """
    sys.path.insert(0, str(ROOT / "src"))
    from twisted.internet import reactor, stdio
    from twisted.internet.protocol import Protocol
    from twisted.web.resource import Resource

    from txpulse import WebSocketResource
    from txpulse.core.deflate import DeflateSettings
    from txpulse.demos.apps import EchoFactory
    from txpulse.server.site import WebSocketSite

    compression: Any = False
    if bits is not None:
        compression = DeflateSettings(
            server_max_window_bits=bits,
            client_max_window_bits=bits,
            mem_level=memLevel,
            server_no_context_takeover=noTakeover,
            client_no_context_takeover=noTakeover,
        )
    root = Resource()
    root.putChild(
        b"echo", WebSocketResource(EchoFactory(), compression=compression, pingInterval=None, maxMessageSize=1 << 20)
    )
    port: Any = reactor.listenTCP(0, WebSocketSite(root), backlog=1024, interface="127.0.0.1")  # type: ignore[attr-defined]

    class Stop(Protocol):
        def connectionLost(self, reason: object = None) -> None:
            reactor.stop()  # type: ignore[attr-defined]

    stdio.StandardIO(Stop())
    print(port.getHost().port, flush=True)
    reactor.run()  # type: ignore[attr-defined]


# -- the measurement -------------------------------------------------------------------


def rss(pid: int) -> int:
    """
    The resident set size of process C{pid}, in bytes.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def message(size: int, seed: int) -> str:
    """
    A JSON-like text of C{size} characters (compresses about 3:1).
    """
    rng = random.Random(seed)
    words = ["topic", "data", "user", "alice", "bob", "price", "volume", "event", "message", "id", "ts", "ok"]
    parts: list[str] = []
    length = 0
    while length < size:
        part = f'{{"{rng.choice(words)}": {rng.randrange(10**6)}, "{rng.choice(words)}": "{rng.choice(words)}{rng.randrange(1000)}"}}, '
        parts.append(part)
        length += len(part)
    return "".join(parts)[:size]


@dataclass
class Row:
    config: str
    takeover: bool
    size: int
    connections: int
    opened: int  # RSS growth per connection for opening it (bytes)
    afterMessage: int  # RSS growth per connection over one message each way
    agreement: str


async def _clients(port: int, connections: int, size: int, compress: bool, pid: int) -> tuple[int, int, int, str]:
    from websockets.asyncio.client import connect
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    extensions = [ClientPerMessageDeflateFactory(client_max_window_bits=True)] if compress else None
    await asyncio.sleep(0.3)
    before = rss(pid)
    sockets = []
    for start in range(0, connections, 50):
        batch = [
            connect(
                f"ws://127.0.0.1:{port}/echo",
                compression=None,
                extensions=extensions,
                max_size=1 << 20,
                ping_interval=None,
                open_timeout=30,
            )
            for _ in range(min(50, connections - start))
        ]
        sockets += await asyncio.gather(*batch)
    agreement = sockets[0].response.headers.get("Sec-WebSocket-Extensions", "none")
    await asyncio.sleep(0.5)
    opened = rss(pid)

    async def one(index: int, ws: Any) -> None:
        text = message(size, index)
        await ws.send(text)
        echoed = await asyncio.wait_for(ws.recv(), 30)
        assert echoed == text

    await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets)))
    await asyncio.sleep(0.5)
    after = rss(pid)
    await asyncio.gather(*(ws.close() for ws in sockets))
    return before, opened, after, agreement


def measure(config: str | None, takeover: bool, size: int, connections: int) -> Row:
    """
    One row: a fresh server, C{connections} clients, one message each way.
    """
    bits, memLevel = (None, 0) if config is None else (int(p) for p in config.split("/"))
    argv = [sys.executable, __file__, "--serve", str(bits or 0), str(memLevel), str(int(not takeover))]
    server = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        before, opened, after, agreement = asyncio.run(
            asyncio.wait_for(_clients(port, connections, size, config is not None, server.pid), 120)
        )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return Row(
        config or "off",
        takeover,
        size,
        connections,
        (opened - before) // connections,
        (after - opened) // connections,
        agreement,
    )


def ratios(config: str, takeover: bool) -> tuple[int, int, int]:
    """
    Compressed bytes for a 16 KiB message, and for 200 small messages in a
    row (and their raw total), as the server's compressor would send them.
    """
    bits, memLevel = (int(p) for p in config.split("/"))

    def compressor() -> Any:
        return zlib.compressobj(6, zlib.DEFLATED, -max(bits, 9), memLevel)

    big = compressor()
    bigSize = len(big.compress(message(16384, 1).encode()) + big.flush(zlib.Z_SYNC_FLUSH)) - 4
    small = compressor()
    smallTotal = rawTotal = 0
    for i in range(200):
        raw = message(80 + i % 120, 1000 + i).encode()
        rawTotal += len(raw)
        if not takeover:
            small = compressor()
        smallTotal += len(small.compress(raw) + small.flush(zlib.Z_SYNC_FLUSH)) - 4
    return bigSize, smallTotal, rawTotal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS), help="BITS/MEMLEVEL,...")
    parser.add_argument("--no-takeover-too", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        bits, memLevel, noTakeover = (int(v) for v in args.serve)
        serve(bits or None, memLevel, bool(noTakeover))
        return
    if not 1 <= args.connections <= 5000:
        parser.error("--connections must be between 1 and 5000")
    sizes = [int(s) for s in args.sizes.split(",")]
    configs = args.configs.split(",")
    print(f"{args.connections} connections; KiB of server RSS per connection, one message each way")
    print(f"{'config':>8} {'takeover':>8} {'size':>6} {'open':>6} {'after 1 msg':>11} {'deflate cost':>12}  agreement")
    rows: list[Row] = []
    started = time.monotonic()
    for size in sizes:
        control = measure(None, True, size, args.connections)
        rows.append(control)
        print(
            f"{'off':>8} {'-':>8} {size:>6} {control.opened / 1024:>6.1f} {control.afterMessage / 1024:>11.1f} {'-':>12}"
        )
        for config in configs:
            for takeover in (True, False) if args.no_takeover_too else (True,):
                row = measure(config, takeover, size, args.connections)
                rows.append(row)
                cost = (row.afterMessage - control.afterMessage) / 1024
                print(
                    f"{config:>8} {'yes' if takeover else 'no':>8} {size:>6} {row.opened / 1024:>6.1f} "
                    f"{row.afterMessage / 1024:>11.1f} {cost:>12.1f}  {row.agreement}",
                    flush=True,
                )
    print(
        f"\n({time.monotonic() - started:.0f} s)\n\ncompressed bytes: a 16 KiB message; 200 small messages (raw total)"
    )
    for config in configs:
        for takeover in (True, False):
            big, small, raw = ratios(config, takeover)
            print(f"{config:>8} {'yes' if takeover else 'no':>8} 16 KiB -> {big:>6}   small: {raw} -> {small:>6}")
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=1))


if __name__ == "__main__":
    main()
