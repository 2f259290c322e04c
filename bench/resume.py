"""
Resume after a reconnect (issue #15): 1,000 clients reconnecting at once,
each 100 messages behind on one topic; how long until all have resumed,
and the server CPU it took. Target: under 1 s on this machine.

    .venv/bin/python bench/resume.py                    # 5 runs per broker, ~1 min
    .venv/bin/python bench/resume.py --brokers memory   # the in-process broker only
    .venv/bin/python bench/resume.py --runs 9 --profile # plus py-spy's hot spots of the server

Each run starts a fresh pub/sub server pinned to core 0: with the
in-process broker, bench/echo_server.py txpulse PORT --app pubsub (the hub
as `twistd txpulse` mounts it at /pubsub, history at its defaults); with
Redis (--brokers ...,redis), the same resource and site on the same
settings, served by this script (bench/echo_server.py has no broker
option) with `Hub(RedisBroker.fromURL(...))` (what `twistd txpulse --broker
redis://...` builds), against a fresh redis-server (no persistence) pinned
to the generator's core. Brokers alternate run by run. Then:

1. a Python client (websockets) publishes --published messages of --size
   bytes of data to the topic and subscribes, which answers the topic's
   position {"subscribed": T, "offset": TOP, "epoch": E};
2. bench/loadgen --mode resume (pinned to core 1) opens --connections
   connections, --concurrency at a time, waits --warmup seconds, then sends
   on every one of them, in one pass, {"action": "subscribe", "topic": T,
   "since": {"offset": TOP - behind, "epoch": E}} and waits until every
   connection has the answer ({"recovered": true}) and the --behind
   replayed deliveries, in order, without a gap or duplicate (each message
   is checked).

Reported per run: the time from the first subscribe sent until the last
connection had its last replayed message; each connection's own resume time
(its subscribe to its last message: p50, p99); the server's CPU seconds
(/proc/PID/stat, user + system) and how busy its core was (/proc/stat,
softirq included: the kernel's loopback work) over exactly that window,
sampled by the generator at its edges, not over the connection opening.
With Redis, also redis-server's CPU seconds over the window (sampled by
this script at the generator's marks). The summary is the median of --runs
runs per broker, and is written with every run to
bench/results/resume.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from echo import (  # noqa: E402
    LOADGEN,
    NOISY,
    OTHER_BUSY,
    ROOT,
    Server,
    ServerProcess,
    build_loadgen,
    cpu_seconds,
    free_port,
    machine,
    machine_cpu_seconds,
    pinning,
    profile_summary,
    py_spy,
    source_digest,
    wait_for_quiet,
)

#: The issue's target: every client resumed within this many milliseconds.
TARGET_MS = 1000.0


class RedisServer:
    """
    A fresh C{redis-server} on a free loopback port, no persistence; a
    context manager.
    """

    def __init__(self, prefix: list[str]) -> None:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = free_port()
        self.process = subprocess.Popen(
            [*prefix, executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisHubServer(ServerProcess):
    """
    C{python bench/resume.py _serve PORT REDIS_URL}: the txpulse pub/sub
    server of echo_server.py, on the Redis broker; like L{Server}.
    """

    def __init__(self, prefix: list[str], redisURL: str, timeout: float = 20.0) -> None:
        port = free_port()
        command = [*prefix, sys.executable, __file__, "_serve", str(port), redisURL]
        super().__init__(command, "Redis hub", port, timeout)


def serveRedisHub(port: int, redisURL: str) -> None:
    """
    What echo_server.py's C{txpulse --app pubsub} serves (same resource
    settings, same site, same collector tuning), with the hub on
    C{RedisBroker.fromURL(redisURL)}; "ready" once both Redis connections
    are up.
    """
    import echo_server

    reactor = echo_server._installEpoll()
    echo_server.raiseOpenFilesLimit()
    echo_server._startTwistedLogging()
    sys.path.insert(0, str(ROOT / "src"))
    from twisted.internet.task import LoopingCall
    from twisted.web.resource import Resource

    import txpulse
    from txpulse.pubsub import Hub, PubSubFactory
    from txpulse.pubsub.broker.redis import RedisBroker

    broker = RedisBroker.fromURL(redisURL)
    resource = txpulse.WebSocketResource(
        PubSubFactory(Hub(broker), maxPublishSize=echo_server.MAX_MESSAGE),
        maxMessageSize=echo_server.MAX_MESSAGE,
        pingInterval=None,
        pingTimeout=echo_server.PING_TIMEOUT,
        compression=False,
    )
    root = Resource()
    root.putChild(b"pubsub", resource)
    site = echo_server._txpulseSite(root)
    site.noisy = False
    reactor.listenTCP(port, site, backlog=1024, interface="127.0.0.1")

    def whenConnected() -> None:
        if broker.connected:
            waiting.stop()
            echo_server.ready()

    waiting = LoopingCall(whenConnected)
    reactor.callWhenRunning(waiting.start, 0.02)
    reactor.run()


def prime(port: int, topic: str, published: int, size: int) -> tuple[int, str]:
    """
    Publish C{published} messages of C{size} bytes of data to C{topic}, then
    subscribe: return the topic's position (offset, epoch) from the answer.
    """
    from websockets.sync.client import connect

    data = "x" * size
    with connect(f"ws://127.0.0.1:{port}/pubsub", compression=None, max_size=None) as ws:
        publish = json.dumps({"action": "publish", "topic": topic, "data": data})
        for _ in range(published):
            ws.send(publish)
        # Requests on one connection are handled in order: the answer comes
        # after every publish above has its offset.
        ws.send(json.dumps({"action": "subscribe", "topic": topic}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=30))
            if "error" in message:
                raise RuntimeError(f"the server refused a request: {message}")
            if "subscribed" in message:
                if "offset" not in message or "epoch" not in message:
                    raise RuntimeError(f"the server gives no positions: {message}")
                return int(message["offset"]), str(message["epoch"])
    raise RuntimeError("no answer to the subscribe")


def resumeOnce(
    args: argparse.Namespace,
    broker: str,
    server_prefix: list[str],
    loadgen_prefix: list[str],
    profile_to: Path | None = None,
) -> dict[str, Any]:
    """
    One run on a fresh server (and a fresh redis-server for C{broker}
    C{"redis"}): prime the topic, then the loadgen's resume. With
    C{profile_to}, py-spy samples the server from the moment every
    connection is open until the resume is over (raw collapsed stacks).
    """
    if broker == "redis":
        with RedisServer(loadgen_prefix) as redis:
            with RedisHubServer(server_prefix, redis.url) as server:
                return _resumeOn(server, args, server_prefix, loadgen_prefix, profile_to, redis.process.pid)
    with Server(args.kind, server_prefix, args=["--app", "pubsub"]) as server:
        return _resumeOn(server, args, server_prefix, loadgen_prefix, profile_to, None)


def _resumeOn(
    server: ServerProcess,
    args: argparse.Namespace,
    server_prefix: list[str],
    loadgen_prefix: list[str],
    profile_to: Path | None,
    redisPid: int | None,
) -> dict[str, Any]:
    server_core = args.server_cpu if server_prefix else None
    top, epoch = prime(server.port, args.topic, args.published, args.size)
    since = top - args.behind
    if since < 0:
        raise RuntimeError(f"only {top} publications on the topic, cannot be {args.behind} behind")
    command = [
        *loadgen_prefix,
        str(LOADGEN),
        "--port", str(server.port),
        "--path", "/pubsub",
        "--mode", "resume",
        "--topic", args.topic,
        "--connections", str(args.connections),
        "--concurrency", str(args.concurrency),
        "--since-offset", str(since),
        "--epoch", epoch,
        "--expect", str(args.behind),
        "--warmup", str(args.warmup if profile_to is None else max(args.warmup, 2.0)),
        "--duration", str(args.timeout),
        "--connect-timeout", "30",
        "--server-pid", str(server.pid),
        "--marks",
    ]  # fmt: skip
    if server_core is not None:
        command += ["--server-core", str(server_core)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    marks: dict[str, tuple[float, float, float | None]] = {}
    messages: list[str] = []
    profiler: subprocess.Popen[bytes] | None = None
    for line in process.stderr:
        line = line.rstrip("\n")
        if line.startswith("OPEN ") and profile_to is not None:
            spy = [
                *loadgen_prefix, py_spy(), "record", "--rate", "1000", "--format", "raw",
                "--output", str(profile_to), "--pid", str(server.pid),
            ]  # fmt: skip
            profiler = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elif line in ("RESUME_START", "RESUME_END"):
            marks[line] = (
                time.monotonic(),
                machine_cpu_seconds()[0],
                cpu_seconds(redisPid) if redisPid is not None else None,
            )
            if line == "RESUME_END" and profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes what it has
        elif not line.startswith("OPEN "):
            messages.append(line)
    out = process.stdout.read()
    if process.wait() != 0 or not out.strip():
        raise RuntimeError(f"the load generator failed (exit {process.returncode}):\n" + "\n".join(messages))
    if profiler is not None:
        _, err = profiler.communicate(timeout=60)
        if not profile_to or not profile_to.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')}")
    if server.process.poll() is not None:
        raise RuntimeError(f"the server died during the run:\n{server.log()}")
    log = server.log().strip()
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["published"] = top
    result["loadgen_messages"] = messages
    if log:
        result["server_log"] = log[-2000:]
    if len(marks) == 2:
        (t0, m0, r0), (t1, m1, r1) = marks["RESUME_START"], marks["RESUME_END"]
        if r0 is not None and r1 is not None:
            result["redis_cpu_seconds"] = round(r1 - r0, 3)
        # CPU of every process on the machine over the window, minus the
        # server's and the generator's: other processes competing (coarse:
        # the window is short and the counters tick every 10 ms).
        wall = t1 - t0
        if wall > 0:
            mine = (
                (result.get("server_cpu_seconds") or 0)
                + (result.get("redis_cpu_seconds") or 0)
                + result["loadgen_cpu_percent"] / 100 * result["window_seconds"]
            )
            result["other_cpu_percent"] = round(max((m1 - m0 - mine) / wall * 100, 0.0), 1)
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(values: list[float]) -> float | None:
        return round(statistics.median(values), 3) if values else None

    def spread(values: list[float]) -> list[float]:
        return [round(min(values), 3), round(max(values), 3)] if values else []

    complete = [r for r in runs if r.get("all_resumed_ms") is not None]
    allMs = [r["all_resumed_ms"] for r in complete]
    cpu = [r["server_cpu_seconds"] for r in runs if r.get("server_cpu_seconds") is not None]
    user = [r["server_cpu_user_seconds"] for r in runs if r.get("server_cpu_user_seconds") is not None]
    core = [r["server_core_busy_seconds"] for r in runs if r.get("server_core_busy_seconds") is not None]
    deliveries = [r["deliveries"] for r in runs]
    perDelivery = [
        r["server_cpu_seconds"] / r["deliveries"] * 1e6 for r in runs if r.get("server_cpu_seconds") and r["deliveries"]
    ]
    return {
        "runs": len(runs),
        "runs_complete": len(complete),
        "all_resumed_ms": med(allMs),
        "all_resumed_ms_min_max": spread(allMs),
        "resume_ms_p50": med([r["resume_ms"]["p50"] for r in complete]),
        "resume_ms_p99": med([r["resume_ms"]["p99"] for r in complete]),
        "send_ms": med([r["send_ms"] for r in runs]),
        "connect_seconds": med([r["connect_seconds"] for r in runs]),
        "server_cpu_seconds": med(cpu),
        "server_cpu_seconds_min_max": spread(cpu),
        "server_cpu_user_seconds": med(user),
        "server_core_busy_seconds": med(core),
        "redis_cpu_seconds": med([r["redis_cpu_seconds"] for r in runs if r.get("redis_cpu_seconds") is not None]),
        "server_cpu_us_per_delivery": med(perDelivery),
        "deliveries_per_run": int(statistics.median(deliveries)) if deliveries else 0,
        "loadgen_cpu_percent": med([r["loadgen_cpu_percent"] for r in runs]),
        "other_cpu_percent_max": max((r.get("other_cpu_percent") or 0) for r in runs) if runs else 0,
        "errors": sum(r["errors"] for r in runs),
        "failed": sum(r["failed"] for r in runs),
        "connections_lost": sum(r["connections"] - r["connections_open"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", default="txpulse", help="echo_server.py kind (needs positions: txpulse)")
    parser.add_argument(
        "--brokers", default="memory,redis", help="memory (in-process) and/or redis (default both, alternating)"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs, each on a fresh server (default 5); medians")
    parser.add_argument("--connections", type=int, default=1000, help="clients resuming at once (default 1000)")
    parser.add_argument("--behind", type=int, default=100, help="messages each client missed (default 100)")
    parser.add_argument(
        "--published", type=int, default=200, help="messages published before (default 200; at least --behind)"
    )
    parser.add_argument("--size", type=int, default=100, help="bytes of data per message (default 100)")
    parser.add_argument("--topic", default="bench")
    parser.add_argument("--concurrency", type=int, default=64, help="connections opened at a time (default 64)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds between all open and the resume")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up on the resume after this many seconds")
    parser.add_argument("--server-cpu", type=int, default=0, help="core for the server (default 0)")
    parser.add_argument("--loadgen-cpu", type=int, default=1, help="core for the load generator (default 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="wait up to this many seconds for an idle machine before each run",
    )
    parser.add_argument(
        "--retries", type=int, default=2, help=f"repeat a run when other processes used over {NOISY:.0f}%% of a core"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the runs, --profile-rounds more runs under py-spy (sampling the resume only): the server's hot spots",
    )
    parser.add_argument("--profile-rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "resume.json")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.published < args.behind or args.behind < 0:
        parser.error("need --runs >= 1 and --published >= --behind >= 0")

    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    if not brokers or not set(brokers) <= {"memory", "redis"}:
        parser.error("--brokers: memory and/or redis")
    notes: list[str] = []
    if "redis" in brokers:
        missing = redisMissing()
        if missing:
            brokers.remove("redis")
            notes.append(f"Redis variant skipped: {missing}")
            print("note:", notes[-1])
            if not brokers:
                return 1

    build_loadgen()
    digest = source_digest()
    server_prefix, loadgen_prefix = pinning(args.server_cpu, args.loadgen_cpu, not args.no_pin)
    print(
        f"resume: {args.connections:,} clients at once, each {args.behind} messages behind "
        f"({args.size} B of data), one topic, {args.runs} runs per broker ({', '.join(brokers)}) on fresh servers",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in brokers}
    for run in range(args.runs):
        for broker in brokers if run % 2 == 0 else brokers[::-1]:
            attempts = []
            for attempt in range(args.retries + 1):
                if args.quiet_wait > 0:
                    wait_for_quiet(args.quiet_wait, OTHER_BUSY)
                result = resumeOnce(args, broker, server_prefix, loadgen_prefix)
                result["attempt"] = attempt + 1
                attempts.append(result)
                if (result.get("other_cpu_percent") or 0) < NOISY:
                    break
                print(
                    f"  run {run + 1} {broker}: other processes used {result['other_cpu_percent']:.0f}% of a core; "
                    "repeating"
                )
            result = min(attempts, key=lambda r: r.get("other_cpu_percent") or 0)
            runs[broker].append(result)
            allMs = result.get("all_resumed_ms")
            print(
                f"  run {run + 1}/{args.runs} {broker:<6}: all resumed in "
                + (
                    f"{allMs:7.1f} ms"
                    if allMs is not None
                    else f"(only {result['resumed']} of {result['resumes_sent']})"
                )
                + f"  per client p50 {result['resume_ms']['p50']:6.1f} p99 {result['resume_ms']['p99']:6.1f} ms"
                f"  server CPU {result.get('server_cpu_seconds')} s (core busy {result.get('server_core_busy_seconds')} s)"
                + (f"  redis CPU {result['redis_cpu_seconds']} s" if "redis_cpu_seconds" in result else "")
                + f"  {result['deliveries']:,} deliveries  loadgen CPU {result['loadgen_cpu_percent']:.0f}%"
                f"  other {result.get('other_cpu_percent', '-')}%"
                + (f"  errors {result['errors']}" if result["errors"] else ""),
                flush=True,
            )
            for message in result["loadgen_messages"]:
                print(f"    loadgen: {message}", file=sys.stderr)

    summaries: dict[str, dict[str, Any]] = {}
    for broker in brokers:
        summary = summaries[broker] = summarize(runs[broker])
        summary["target_met"] = (
            summary["all_resumed_ms"] is not None
            and summary["runs_complete"] == summary["runs"]
            and summary["all_resumed_ms"] < TARGET_MS
        )
        print()
        print(
            f"{broker}, median of {summary['runs']}: all {args.connections:,} resumed in "
            f"{summary['all_resumed_ms']} ms (min..max {summary['all_resumed_ms_min_max']}), "
            f"per client p50 {summary['resume_ms_p50']} ms, p99 {summary['resume_ms_p99']} ms"
        )
        print(
            f"  server CPU {summary['server_cpu_seconds']} s (user {summary['server_cpu_user_seconds']} s; "
            f"min..max {summary['server_cpu_seconds_min_max']}), its core busy {summary['server_core_busy_seconds']} s, "
            f"{summary['server_cpu_us_per_delivery']} us of server CPU per replayed message"
            + (
                f"; redis-server CPU {summary['redis_cpu_seconds']} s"
                if summary["redis_cpu_seconds"] is not None
                else ""
            )
        )
        print(
            f"  (not in the figures: opening the {args.connections:,} connections beforehand, {args.concurrency} at a "
            f"time, took {summary['connect_seconds']} s; sending the {args.connections:,} subscribes took "
            f"{summary['send_ms']} ms)"
        )
        print(f"  target (< {TARGET_MS:.0f} ms): {'met' if summary['target_met'] else 'MISSED'}")
        if summary["errors"] or summary["failed"] or summary["connections_lost"]:
            notes.append(
                f"{broker}: {summary['errors']} errors, {summary['failed']} failed resumes, "
                f"{summary['connections_lost']} connections lost (see stderr)"
            )
        if summary["other_cpu_percent_max"] >= OTHER_BUSY:
            notes.append(
                f"{broker}: other processes used up to {summary['other_cpu_percent_max']:.0f}% of a core during a "
                "resume: noisy"
            )
    for note in notes:
        print("note:", note)

    profiles: dict[str, dict[str, Any]] = {}
    if args.profile:
        for broker in brokers:
            profiles[broker] = profileResumes(args, broker, server_prefix, loadgen_prefix)

    if source_digest() != digest:
        notes.append("txpulse's sources changed while the benchmark ran: the runs may have measured different code")
        print("note:", notes[-1])
    report = {
        "benchmark": "resume",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "params": {k: v for k, v in vars(args).items() if k not in ("output", "profile", "profile_rounds")}
        | {"pinned": bool(server_prefix), "target_ms": TARGET_MS, "brokers": brokers},
        "machine": machine() | {"txpulse_src_digest": digest},
        "summary": summaries,
        "target_met": {broker: summary["target_met"] for broker, summary in summaries.items()},
        "notes": notes,
        "runs": [r | {"broker": broker, "run": i + 1} for broker in brokers for i, r in enumerate(runs[broker])],
    }
    if profiles:
        report["profile"] = profiles
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0


def redisMissing() -> str | None:
    """
    Why the Redis variant cannot run here, or C{None}.
    """
    if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
        return "redis-server is not installed"
    try:
        import txredisapi  # noqa: F401
    except ImportError:
        return "txredisapi is not installed (pip install txpulse[redis])"
    return None


def profileResumes(
    args: argparse.Namespace, broker: str, server_prefix: list[str], loadgen_prefix: list[str]
) -> dict[str, Any]:
    """
    --profile-rounds more runs with py-spy sampling the server over the
    resume; their stacks merged, without the idle ones.
    """
    stacks = args.output.with_name(f"{args.output.stem}-{args.kind}-{broker}.profile.txt")
    parts = []
    for round_ in range(args.profile_rounds):
        part = stacks.with_name(f"{stacks.stem}.{round_}.txt")
        if args.quiet_wait > 0:
            wait_for_quiet(args.quiet_wait, OTHER_BUSY)
        profiled = resumeOnce(args, broker, server_prefix, loadgen_prefix, profile_to=part)
        parts.append((part, profiled))
    # py-spy does not always tell waiting from working: stacks whose
    # innermost frame is the reactor's poll (epoll_wait: the warm-up before
    # the resume, the gaps while the generator reads) or a thread pool's
    # idle worker (the Redis variant's name resolution started one) are
    # left out, and counted.
    kept, idle = [], 0
    for part, _ in parts:
        for row in part.read_text().splitlines():
            stack, _, count = row.rpartition(" ")
            if stack.rsplit(";", 1)[-1].startswith(("EPollReactor.doPoll ", "Condition.wait ")):
                idle += int(count)
            else:
                kept.append(row + "\n")
        part.unlink()
    stacks.write_text("".join(kept))
    profile = profile_summary(stacks, top=20) | {
        "idle_samples_left_out": idle,
        "rounds": args.profile_rounds,
        "stacks": str(stacks.relative_to(ROOT) if stacks.is_relative_to(ROOT) else stacks),
        "all_resumed_ms_while_profiled": [p.get("all_resumed_ms") for _, p in parts],
    }
    print(
        f"\nprofile of the server ({broker} broker) over {args.profile_rounds} resumes ({profile['samples']} samples "
        f"at 1 kHz, {idle} idle ones left out):"
    )
    print("  self time, top functions:")
    for percent, name in profile["self"][:15]:
        print(f"    {percent:5.1f}%  {name}")
    print("  txpulse, inclusive:")
    for percent, name in profile["txpulse_inclusive"][:15]:
        print(f"    {percent:5.1f}%  {name}")
    print(f"  stacks: {profile['stacks']}")
    return profile


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "_serve":
        serveRedisHub(int(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    sys.exit(main())
