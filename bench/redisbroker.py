"""
What positions and history cost on the Redis broker (issue #15): publish
and fan-out throughput across two brokers, the at-most-once Redis pub/sub
broker of the last release (its source from git, C{HEAD}) against the
broker with positions, history off (size 0) and on (the defaults), and the
alternative fan-out (each process reads the streams with C{XREAD BLOCK}
instead of pub/sub: a prototype of the receiving side only), side by side
in one run. The new broker's connections parse a whole read at once
(txredisapi takes a reactor turn per bulk string): "at-most-once, new
parser" is the old broker with that parser, to tell what the parser gains
from what positions cost.

    .venv/bin/python bench/redisbroker.py                  # ~30 s
    .venv/bin/python bench/redisbroker.py --messages 50000 --runs 5

A fresh C{redis-server} (no persistence) on a free loopback port. In one
Python process, two hubs, each with its own broker (as two server
processes would have): hub P publishes, hub R has C{--subscribers}
subscribers of the topic that write nowhere. P publishes C{--batch}
messages (100 bytes of data) in one reactor turn, then waits until R has
delivered all of them, and again, C{--messages} in all. Figures, medians
of C{--runs} runs: messages/s through Redis and back (the wall clock), the
Python process's CPU per message (publishing and receiving, both brokers
and the hub), and Redis' own CPU per message (C{INFO cpu}).

Prints a table and writes bench/results/redisbroker.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(HERE))

from subscribers import NullSubscriber  # noqa: E402

DATA = "x" * 100


def freePort() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redisCommand(port: int, *args: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        request = f"*{len(args)}\r\n".encode() + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args)
        sock.sendall(request)
        reply = b""
        while not reply.endswith(b"\r\n") or (reply.startswith(b"$") and reply.count(b"\r\n") < 2):
            reply += sock.recv(65536)
        return reply


def redisCpu(port: int) -> float:
    info = redisCommand(port, "INFO", "cpu").decode()
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])


def oldBrokerClass(sameParser: bool = False) -> Any:
    """
    The at-most-once C{RedisBroker} of git's C{HEAD}, loaded as a module of
    the package (its relative imports resolve) from a temporary file.
    """
    source = subprocess.run(
        ["git", "show", "HEAD:src/txpulse/pubsub/broker/redis.py"],
        cwd=HERE.parent,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "atmostonce.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("txpulse.pubsub.broker._atmostonce", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    if sameParser:
        # The new broker's connections parse a whole read at once instead
        # of a reactor turn per bulk string: the same for the old one, to
        # see what positions themselves cost.
        from txpulse.pubsub.broker import links

        module._linkProtocolClass = links.linkProtocolClass
    return module.RedisBroker


class CountingSubscriber(NullSubscriber):
    """
    A subscriber that writes nowhere and counts what it is given.
    """

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.reached: Any = None

    def reach(self, target: int) -> Any:
        """
        A Deferred firing once C{target} messages were given (no polling:
        it would cost the CPU being measured).
        """
        from twisted.internet.defer import Deferred, succeed

        if self.count >= target:
            return succeed(None)
        self.target, self.reached = target, Deferred()
        return self.reached

    def sendFrame(self, frame: bytes) -> None:
        self.queueFrame(frame)

    def queueFrame(self, frame: bytes) -> bool:
        self.count += 1
        if self.reached is not None and self.count >= self.target:
            reached, self.reached = self.reached, None
            reached.callback(None)
        return False


async def runOnce(kind: str, port: int, args: argparse.Namespace) -> dict[str, float]:
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    from txpulse.pubsub.broker.redis import RedisBroker
    from txpulse.pubsub.hub import Hub

    if kind.startswith("at-most-once"):
        brokerClass = oldBrokerClass(sameParser=kind == SAME_PARSER)
    else:
        brokerClass = RedisBroker
    hubOptions: dict[str, Any] = {}
    if kind == "positions, history off":
        hubOptions = {"historySize": 0}
    url = f"redis://127.0.0.1:{port}/0"
    brokers = [brokerClass.fromURL(url, reactor=reactor, pingInterval=None) for _ in range(2)]
    publisher, receiver = (Hub(broker, **hubOptions) for broker in brokers)
    while not all(broker.connected for broker in brokers):
        await deferLater(reactor, 0.01)
    reader = None
    if kind == XREAD:
        # The alternative fan-out: the receiving process reads the stream
        # (XREAD BLOCK, a batch per read) instead of pub/sub; its broker
        # only publishes, and the reads feed its hub's deliver.
        from txpulse.pubsub.broker.memory import MemoryBroker

        receiver = Hub(MemoryBroker())
        reader = await streamReader(port, receiver)
    if os.environ.get("NODELAY"):
        for broker in brokers:
            for link in (broker._publisher, broker._subscriber):
                link.protocol.transport.setTcpNoDelay(True)
    subscribers = [CountingSubscriber() for _ in range(args.subscribers)]
    for subscriber in subscribers:
        receiver.subscribe(subscriber, "bench")
    first = subscribers[0]
    while reader is None and redisCommand(port, "PUBSUB", "NUMSUB", "txpulse:bench").split(b"\r\n")[-2] != b":1":
        await deferLater(reactor, 0.01)
    # Warm up (script cache, connections), then measure.
    for _ in range(args.batch):
        publisher.publish("bench", DATA)
    await first.reach(args.batch)
    start, cpu, redis = time.perf_counter(), time.process_time(), redisCpu(port)
    sent = 0
    while sent < args.messages:
        for _ in range(args.batch):
            publisher.publish("bench", DATA)
        sent += args.batch
        await first.reach(sent + args.batch)
    wall, cpu, redis = time.perf_counter() - start, time.process_time() - cpu, redisCpu(port) - redis
    for broker in brokers:
        await broker.stop()
    if reader is not None:
        reader.stopped = True
        reader.connection.transport.loseConnection()
    assert all(s.count == args.messages + args.batch for s in subscribers)
    redisCommand(port, "FLUSHALL")
    return {
        "messages_per_s": args.messages / wall,
        "python_us_per_message": cpu / args.messages * 1e6,
        "redis_us_per_message": redis / args.messages * 1e6,
    }


XREAD = "streams (XREAD BLOCK)"
SAME_PARSER = "at-most-once, new parser"
KINDS = ("at-most-once", SAME_PARSER, "positions, history off", "positions, history on", XREAD)


class StreamReader:
    stopped = False
    connection: Any = None


async def streamReader(port: int, hub: Any) -> StreamReader:
    """
    Read C{txpulse:history:bench} with C{XREAD BLOCK 0 COUNT 1000} in a
    loop on a connection of its own, delivering every entry to C{hub}.
    """
    import txredisapi
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint
    from twisted.internet.protocol import Factory

    from txpulse.pubsub.broker.links import linkProtocolClass

    class Owner:
        _reactor = reactor
        _messageReceived = None

    class Link:
        role = "pub"
        _broker = Owner()

        def _lost(self, protocol: Any, reason: Any) -> None:
            pass

    # The broker's parser (a whole read at once), for a fair comparison.
    Protocol = linkProtocolClass(txredisapi.RedisProtocol, Link())
    factory = Factory.forProtocol(lambda: Protocol(charset="utf-8", convertNumbers=False, replyTimeout=None))
    factory.stopTrying = lambda: None
    connection = await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    await connection.whenConnected()
    reader = StreamReader()
    reader.connection = connection
    last = ["0-0"]
    key = "txpulse:history:bench"

    def read() -> None:
        if reader.stopped:
            return
        reading = connection.execute_command(
            "XREAD", "COUNT", "1000", "BLOCK", "0", "STREAMS", key, last[0], apply_timeout=False
        )
        reading.addCallbacks(got, lambda failure: None)

    def got(reply: Any) -> None:
        for _stream, entries in reply or ():
            for entry, fields in entries:
                last[0] = entry
                hub.deliver("bench", fields[1], int(entry.partition("-")[0]), "e")
        read()

    read()
    return reader


async def main(args: argparse.Namespace) -> None:
    executable = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = freePort()
    directory = tempfile.mkdtemp()
    server = subprocess.Popen(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redisCommand(port, "PING")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
        for run in range(args.runs):
            for kind in KINDS:
                result = await runOnce(kind, port, args)
                runs[kind].append(result)
                print(
                    f"run {run + 1}/{args.runs} {kind:26} {result['messages_per_s']:9,.0f} msg/s  "
                    f"python {result['python_us_per_message']:5.1f} us/msg  redis {result['redis_us_per_message']:5.1f} us/msg",
                    flush=True,
                )
    finally:
        server.kill()
        server.wait()
    summary = {
        kind: {key: statistics.median(r[key] for r in results) for key in results[0]} for kind, results in runs.items()
    }
    base = summary["at-most-once"]["messages_per_s"]
    print(
        f"\nmedians of {args.runs} runs; {args.messages:,} messages, batches of {args.batch}, {args.subscribers} subscribers"
    )
    for kind, figures in summary.items():
        print(
            f"{kind:26} {figures['messages_per_s']:9,.0f} msg/s ({figures['messages_per_s'] / base:4.0%})  "
            f"python {figures['python_us_per_message']:5.1f} us/msg  redis {figures['redis_us_per_message']:5.1f} us/msg"
        )
    results = {"options": vars(args), "cpus": os.cpu_count(), "medians": summary, "runs": runs}
    out = HERE / "results" / "redisbroker.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()

    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    failed: list[Any] = []

    def done(result: object) -> None:
        if hasattr(result, "printTraceback"):
            result.printTraceback()
            failed.append(result)
        reactor.stop()

    reactor.callWhenRunning(lambda: Deferred.fromCoroutine(main(options)).addBoth(done))
    reactor.run()
    sys.exit(1 if failed else 0)
