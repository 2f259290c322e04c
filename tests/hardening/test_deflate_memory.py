"""
What permessage-deflate costs the real plugin (C{twistd -n txpulse
--deflate}) per connection, in RSS: before, 15-bit windows and memLevel 5
held 190 KiB per connection after one 64 KiB message each way; the bound is
now 12-bit windows and memLevel 4 (bench/deflate_memory.py: 30-43 KiB).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..support.processes import TwistdServer, rss

#: Connections opened; enough for the RSS per connection to stand out.
CONNECTIONS = 100

#: The most RSS growth per connection accepted over one 64 KiB message each
#: way: measured 43 KiB with the bound, 190 KiB without.
MAX_PER_CONNECTION = 80 * 1024


async def exchange(port: int, pid: int) -> tuple[str, int]:
    """
    Open L{CONNECTIONS} compressed connections to C{/echo}, send one 64 KiB
    text on each and wait for its echo; the agreement and the RSS growth.
    """
    from websockets.asyncio.client import connect
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    sockets = []
    for _ in range(CONNECTIONS // 25):
        sockets += await asyncio.gather(
            *(
                connect(
                    f"ws://127.0.0.1:{port}/echo",
                    compression=None,
                    extensions=[ClientPerMessageDeflateFactory(client_max_window_bits=True)],
                    max_size=1 << 20,
                    ping_interval=None,
                    open_timeout=10,
                )
                for _ in range(25)
            )
        )
    await asyncio.sleep(0.3)
    before = rss(pid)

    async def one(index: int, ws: object) -> None:
        text = "".join(f'{{"n": {index}, "i": {i}, "topic": "t{i % 7}"}}, ' for i in range(2000))[:65536]
        await ws.send(text)  # type: ignore[attr-defined]
        assert await asyncio.wait_for(ws.recv(), 10) == text  # type: ignore[attr-defined]

    await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets)))
    await asyncio.sleep(0.3)
    after = rss(pid)
    agreement = sockets[0].response.headers["Sec-WebSocket-Extensions"]
    await asyncio.gather(*(ws.close() for ws in sockets))
    return agreement, (after - before) // CONNECTIONS


def test_deflate_memory_per_connection_is_bounded(tmp_path: Path) -> None:
    """
    With C{--deflate}, a client offering C{client_max_window_bits} (as
    Chromium does) is answered with 12-bit windows both ways, and one 64 KiB
    message each way on 100 connections grows the server's RSS by less than
    L{MAX_PER_CONNECTION} per connection.
    """
    with TwistdServer(tmp_path / "twistd.log", "--deflate", "--ping-interval", "0") as server:
        assert server.process is not None
        # In a thread of its own: under pytest-twisted an event loop may
        # already run in this one.
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(asyncio.run, asyncio.wait_for(exchange(server.port, server.process.pid), 60))
            agreement, perConnection = running.result()
    assert agreement == "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    assert perConnection < MAX_PER_CONNECTION, f"{perConnection / 1024:.1f} KiB per connection"
