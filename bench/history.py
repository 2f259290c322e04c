"""
What pub/sub history costs (issue #15): memory per topic, and fan-out
throughput with history on vs off, in one process.

    .venv/bin/python bench/history.py                   # everything, ~2 minutes
    .venv/bin/python bench/history.py memory            # RSS per topic only
    .venv/bin/python bench/history.py publish           # in-process cost per publish
    .venv/bin/python bench/history.py fanout --runs 5   # loadgen against a server

memory   a fresh process per configuration: 1,000 topics, N publications of
         100 bytes of data each, kept (history size N, ttl 1 hour); VmRSS
         after minus before (after a gc), per topic and per publication.
publish  the hub's publish path in process, to topics with one subscriber
         that writes nowhere (the worst case for history: nothing to
         amortize it over): microseconds per publish, history on vs off;
         and fan-out in process: one topic, 1,000 real wires on string
         transports, deliveries per CPU second (steadier than the loadgen
         figure on a busy machine).
fanout   the bench's fan-out load (bench/loadgen --mode fanout: one
         publisher, 1,000 subscribers on /pubsub, 32 publishes in flight,
         100-byte data), against a server process serving the hub with
         history on (the defaults) vs off (size 0), alternating, the server
         pinned to core 0 and loadgen to core 1: deliveries/s, and
         deliveries per second of the server's CPU time over the measured
         window (the steadier figure on a shared machine), medians of --runs
         runs.

Prints a table and writes bench/results/history.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(HERE))

DATA = "x" * 100

from subscribers import NullSubscriber  # noqa: E402

from txpulse.pubsub.hub import DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL  # noqa: E402


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def memoryChild(topics: int, size: int) -> dict[str, Any]:
    """
    In a fresh process: RSS of C{topics} topics holding C{size}
    publications each.
    """
    from twisted.internet.task import Clock

    from txpulse.pubsub.hub import Hub

    clock = Clock()
    hub = Hub(clock=clock, historySize=size, historyTtl=3600.0 if size else 0.0)
    names = [f"topic-{i:05}" for i in range(topics)]
    hub.publish("warm", DATA)
    gc.collect()
    before = rss()
    for _ in range(max(size, 1)):
        for name in names:
            hub.publish(name, DATA)
    gc.collect()
    after = rss()
    return {"topics": topics, "size": size, "rss_bytes": after - before}


def memory(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for size in (0, 10, 100, 1000):
        out = subprocess.run(
            [sys.executable, __file__, "_memory", str(args.topics), str(size)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out)
        result["per_topic_bytes"] = result["rss_bytes"] / args.topics
        result["per_publication_bytes"] = result["rss_bytes"] / (args.topics * size) if size else None
        results.append(result)
        print(
            f"memory: {args.topics:,} topics x {size:>4} kept: RSS +{result['rss_bytes'] / 2**20:7.1f} MiB, "
            f"{result['per_topic_bytes']:9.0f} B/topic"
            + (f", {result['per_publication_bytes']:.0f} B/publication" if size else ""),
            flush=True,
        )
    return results


def publishCost(historySize: int, historyTtl: float, topics: int, n: int) -> float:
    from twisted.internet.task import Clock

    from txpulse.pubsub.hub import Hub

    clock = Clock()
    hub = Hub(clock=clock, historySize=historySize, historyTtl=historyTtl)
    names = [f"topic-{i:05}" for i in range(topics)]
    for name in names:
        hub.subscribe(NullSubscriber(), name)  # type: ignore[arg-type]
    data = DATA
    start = time.perf_counter()
    for i in range(n):
        hub.publish(names[i % topics], data)
        if i % 64 == 63:
            clock.advance(0)  # end the turn: the batch is written
    elapsed = time.perf_counter() - start
    return elapsed / n * 1e6


def fanoutCost(historySize: int, historyTtl: float, subscribers: int, n: int) -> float:
    """
    CPU seconds per delivery of C{n} publishes to one topic with
    C{subscribers} real wires (L{WebSocketWire} on a string transport that
    is emptied every turn), in process: the hub's and the wire's cost,
    without the kernel's or the network's.
    """
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    from txpulse.core.connection import Connection, Side
    from txpulse.pubsub.hub import Hub
    from txpulse.pubsub.protocol import PubSubFactory
    from txpulse.wire.protocol import WebSocketWire, WireOptions

    clock = Clock()
    hub = Hub(clock=clock, historySize=historySize, historyTtl=historyTtl)
    factory = PubSubFactory(hub)
    transports = []
    for _ in range(subscribers):
        transport = StringTransport()
        wire = WebSocketWire(
            factory.buildProtocol(None), Connection(Side.SERVER), clock=clock, options=WireOptions(pingInterval=None)
        )
        wire.makeConnection(transport)
        hub.subscribe(wire, "bench")
        transports.append(transport)
    start = time.process_time()
    for i in range(n):
        hub.publish("bench", DATA)
        if i % 32 == 31:
            clock.advance(0)
            for transport in transports:
                transport.clear()
    clock.advance(0)
    return (time.process_time() - start) / (n * subscribers)


def publish(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"off": [], "on": []}
    fan: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.runs):
        for kind, (size, ttl) in (("off", (0, 0.0)), ("on", (DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL))):
            runs[kind].append(publishCost(size, ttl, 1000, 200_000))
            fan[kind].append(fanoutCost(size, ttl, 1000, 2000))
    result = {kind: statistics.median(values) for kind, values in runs.items()}
    fanned = {kind: 1 / statistics.median(values) for kind, values in fan.items()}
    print(
        f"publish (1,000 topics, 1 subscriber each, in process): off {result['off']:.2f} us, "
        f"on {result['on']:.2f} us per publish ({result['on'] / result['off'] - 1:+.0%})",
        flush=True,
    )
    print(
        f"fan-out in process (1 topic, 1,000 wires, CPU time): off {fanned['off']:,.0f}, "
        f"on {fanned['on']:,.0f} deliveries/s ({fanned['on'] / fanned['off'] - 1:+.1%})",
        flush=True,
    )
    return {"us_per_publish": result, "runs": runs, "inprocess_deliveries_per_cpu_s": fanned, "fanout_runs": fan}


def serve(port: int, size: int, ttl: float) -> None:
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver
    from twisted.web.resource import Resource

    from txpulse.pubsub.hub import Hub
    from txpulse.pubsub.protocol import PubSubFactory
    from txpulse.server.resource import WebSocketResource
    from txpulse.server.site import WebSocketSite

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    root = Resource()
    hub = Hub(historySize=size, historyTtl=ttl)
    root.putChild(b"pubsub", WebSocketResource(PubSubFactory(hub, maxPublishSize=1 << 20), pingInterval=None))
    site = WebSocketSite(root, requestTimeout=10.0, maxConnections=0, maxConnectionsPerAddress=0)
    site.noisy = False
    reactor.listenTCP(port, site, backlog=4096, interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.callWhenRunning(lambda: print("READY", flush=True))  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


def fanoutOnce(size: int, ttl: float, args: argparse.Namespace) -> tuple[float, float]:
    """
    One loadgen fan-out run against a server with this history.

    @return: deliveries/s, and deliveries per second of the server's CPU
        time over the measured window (steadier on a shared machine).
    """
    from echo import build_loadgen, cpu_seconds, free_port

    loadgen = build_loadgen()
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, __file__, "_serve", str(port), str(size), str(ttl)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "READY"
        command = [
            "taskset", "-c", "1", str(loadgen), "--port", str(port), "--path", "/pubsub",
            "--mode", "fanout", "--connections", str(args.subscribers), "--inflight", "32",
            "--size", "100", "--warmup", "1", "--duration", str(args.duration),
            "--bursts", "0", "--concurrency", "64", "--marks",
        ]  # fmt: skip
        marks: dict[str, float] = {}
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as generator:
            assert generator.stderr is not None and generator.stdout is not None
            for line in generator.stderr:
                if line.strip() in ("MEASURE_START", "MEASURE_END"):
                    marks[line.strip()] = cpu_seconds(server.pid)
            out = generator.stdout.read()
        result = json.loads(out.strip().splitlines()[-1])
        cpu = marks["MEASURE_END"] - marks["MEASURE_START"]
        return float(result["deliveries_per_s"]), float(result["deliveries"]) / cpu
    finally:
        server.terminate()
        server.wait()


def fanout(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"off": [], "on": []}
    perCpu: dict[str, list[float]] = {"off": [], "on": []}
    for run in range(args.runs):
        order = (("off", (0, 0.0)), ("on", (DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL)))
        for kind, (size, ttl) in order if run % 2 == 0 else order[::-1]:
            rate, efficiency = fanoutOnce(size, ttl, args)
            runs[kind].append(rate)
            perCpu[kind].append(efficiency)
    result = {kind: statistics.median(values) for kind, values in runs.items()}
    cpu = {kind: statistics.median(values) for kind, values in perCpu.items()}
    print(
        f"fanout ({args.subscribers:,} subscribers, 32 in flight, 100 B): off {result['off']:,.0f}, "
        f"on {result['on']:,.0f} deliveries/s ({result['on'] / result['off'] - 1:+.1%}); per server CPU second: "
        f"off {cpu['off']:,.0f}, on {cpu['on']:,.0f} ({cpu['on'] / cpu['off'] - 1:+.1%})",
        flush=True,
    )
    return {"deliveries_per_s": result, "deliveries_per_server_cpu_s": cpu, "runs": runs, "runs_per_cpu": perCpu}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_memory":
        print(json.dumps(memoryChild(int(sys.argv[2]), int(sys.argv[3]))))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="*", default=["memory", "publish", "fanout"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for what in args.what:
        results[what] = {"memory": memory, "publish": publish, "fanout": fanout}[what](args)
    out = HERE / "results" / "history.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **results}, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
