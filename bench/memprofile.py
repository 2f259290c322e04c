"""
Where a Twisted-based server's memory per idle WebSocket connection goes.

    .venv/bin/python bench/memprofile.py                     # txpulse, 2,000 connections, heartbeat 20 s
    .venv/bin/python bench/memprofile.py --kind twisted --connections 5000
    .venv/bin/python bench/memprofile.py --deflate --idle-messages 1

Runs the server of bench/echo_server.py (the same resource, in a Site on the
epoll reactor) in this process with tracemalloc on, opens --connections idle
WebSocket connections with bench/loadgen (idle mode), and once they are all
open prints, per connection:

  - the bytes tracemalloc attributes to each allocation site (file:line),
    and the total (Python-level allocations only: the process's RSS per
    connection, as bench/run.py measures it, adds allocator overhead and
    fragmentation, typically 10-25% more);
  - the objects alive, by type: how many per connection and their shallow
    size (sys.getsizeof; an instance's __dict__ is counted as a dict).

Not a benchmark (tracemalloc slows everything down); a tool to decide what to
slim.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import echo_server  # noqa: E402
from echo import LOADGEN, build_loadgen, free_port  # noqa: E402


def census() -> tuple[Counter[str], Counter[str]]:
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        name = f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', kind.__name__)}"
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    return counts, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("txpulse", "txpulse-stock-site", "twisted"), default="txpulse")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--heartbeat", type=float, default=20.0)
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--idle-messages", type=int, default=0)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    build_loadgen()
    echo_server.raiseOpenFilesLimit()

    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor
    from twisted.internet.task import LoopingCall
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    options = echo_server.ServerOptions(heartbeat=args.heartbeat or None, deflate=args.deflate)
    make = echo_server._txpulseResource if args.kind.startswith("txpulse") else echo_server._twistedResource
    root = Resource()
    root.putChild(b"echo", make(options))
    site = echo_server._txpulseSite(root) if args.kind == "txpulse" else Site(root)
    site.noisy = False
    port = free_port()
    reactor.listenTCP(port, site, backlog=1024, interface="127.0.0.1")
    n = args.connections
    state: dict[str, object] = {}

    def start() -> None:
        gc.collect()
        tracemalloc.start(1)
        state["before"] = tracemalloc.take_snapshot()
        state["census"] = census()
        command = [
            str(LOADGEN), "--port", str(port), "--mode", "idle", "--connections", str(n),
            "--concurrency", "64", "--hold", "600", "--idle-messages", str(args.idle_messages),
            "--connect-timeout", "120",
        ] + (["--deflate"] if args.deflate else [])  # fmt: skip
        state["loadgen"] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        state["t0"] = time.monotonic()
        poll.start(0.2)

    def check() -> None:
        # every connection is a reader (plus the listening port)
        if len(reactor.getReaders()) < n + 1:
            if time.monotonic() - state["t0"] > 120:  # type: ignore[operator]
                print("not all connections opened", file=sys.stderr)
                finish(None)
            return
        if "opened" not in state:
            state["opened"] = time.monotonic()
            return
        if time.monotonic() - state["opened"] < 1.5 + (0.5 if args.idle_messages else 0):  # type: ignore[operator]
            return
        poll.stop()
        finish(n)

    def finish(opened: int | None) -> None:
        if opened:
            gc.collect()
            after = tracemalloc.take_snapshot()
            counts1, sizes1 = census()
            counts0, sizes0 = state["census"]  # type: ignore[misc]
            stats = after.compare_to(state["before"], "lineno")  # type: ignore[arg-type]
            total = sum(s.size_diff for s in stats)
            print(
                f"{args.kind}: {n:,} idle connections (heartbeat {args.heartbeat:g} s"
                f"{', deflate' if args.deflate else ''}{f', {args.idle_messages} message(s) each' if args.idle_messages else ''})"
            )
            print(f"\ntracemalloc: {total / n:,.0f} bytes per connection in all; by allocation site:")
            for s in stats[: args.top]:
                if s.size_diff <= 0:
                    continue
                frame = s.traceback[0]
                where = frame.filename.split("site-packages/")[-1].split("/src/")[-1]
                print(f"  {s.size_diff / n:8,.0f} B  {s.count_diff / n:6.2f} blocks  {where}:{frame.lineno}")
            print("\nobjects alive per connection, by type (shallow sizes):")
            rows = []
            for name in set(counts1) | set(counts0):
                dc = counts1[name] - counts0[name]
                ds = sizes1[name] - sizes0[name]
                if dc / n >= 0.5:
                    rows.append((ds / n, dc / n, name))
            for size, count, name in sorted(rows, reverse=True)[: args.top]:
                print(f"  {size:8,.0f} B  {count:6.2f}  {name}")
        loadgen = state.get("loadgen")
        if loadgen is not None:
            loadgen.kill()  # type: ignore[attr-defined]
            loadgen.wait()  # type: ignore[attr-defined]
        reactor.stop()

    poll = LoopingCall(check)
    reactor.callWhenRunning(start)
    reactor.run()


if __name__ == "__main__":
    main()
