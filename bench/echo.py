"""
Echo throughput: txpulse's WebSocketResource against Twisted's own
twisted.web.websocket.WebSocketResource, in one run, on one machine.

    .venv/bin/python bench/echo.py                          # 32-byte messages
    .venv/bin/python bench/echo.py --size 65536 --inflight 4  # 64 KiB messages

Each measurement starts a fresh server (bench/echo_server.py) pinned to one
core and the C load generator (bench/loadgen.c, built on demand) pinned to
another; the generator keeps --inflight messages in flight on each of
--connections connections and counts echoed messages for --duration seconds
after --warmup seconds. Servers alternate within every run (ABAB, then BABA)
so slow drift of the machine hits all of them alike; the median of --runs
runs is reported per server, with the ratio of the first server to the
second, the server's CPU use over the window (about 100% means it is the
bottleneck, as it should be) and the generator's (near 100% means the
generator is, and the figure is only a lower bound).

Prints a table and writes everything, raw runs included, as JSON to
bench/results/echo-small.json (messages under 1 KiB) or
bench/results/echo-<size>.json, or to --output.

The helpers (build_loadgen, start_server, run_loadgen, measure) are meant to
be reused by other benchmarks in this directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOADGEN_SRC = BENCH / "loadgen.c"
LOADGEN = BENCH / "loadgen"
SERVER = BENCH / "echo_server.py"
RESULTS = BENCH / "results"

#: Over this, the load generator is (close to) the bottleneck.
LOADGEN_SATURATED = 90.0
#: Under this, the server had idle time: latency or the in-flight window, not
#: the server's speed, bounded the figure.
SERVER_SATURATED = 90.0

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Params:
    """
    What one measurement does (the load generator's options).
    """

    connections: int = 64
    inflight: int = 32
    size: int = 32
    warmup: float = 2.0
    duration: float = 5.0
    binary: bool = False
    path: str = "/echo"


# -- building and pinning ------------------------------------------------------


def build_loadgen() -> Path:
    """
    Compile bench/loadgen.c unless bench/loadgen is newer than it.
    """
    if LOADGEN.exists() and LOADGEN.stat().st_mtime >= LOADGEN_SRC.stat().st_mtime:
        return LOADGEN
    cc = os.environ.get("CC", "gcc")
    command = [cc, "-O2", "-Wall", "-o", str(LOADGEN), str(LOADGEN_SRC)]
    print("building the load generator:", " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True)
    return LOADGEN


def pinning(server_cpu: int, loadgen_cpu: int, enabled: bool = True) -> tuple[list[str], list[str]]:
    """
    The command prefixes that pin the server and the generator to their cores,
    or empty prefixes (with a warning) when pinning is off or impossible.
    """
    if not enabled:
        return [], []
    taskset = shutil.which("taskset")
    problem = None
    if taskset is None:
        problem = "taskset not found (util-linux)"
    else:
        cpus = os.sched_getaffinity(0)
        if server_cpu == loadgen_cpu:
            problem = "the server and the generator would share a core"
        elif not {server_cpu, loadgen_cpu} <= cpus:
            problem = f"cores {server_cpu} and {loadgen_cpu} are not both available (have {sorted(cpus)})"
        elif subprocess.run([taskset, "-c", str(server_cpu), "true"], capture_output=True).returncode:
            problem = "taskset cannot set the CPU affinity here"
    if problem:
        print(f"warning: not pinning: {problem}; figures will be noisier", file=sys.stderr)
        return [], []
    assert taskset is not None
    return [taskset, "-c", str(server_cpu)], [taskset, "-c", str(loadgen_cpu)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """
    User + system CPU seconds used so far by process C{pid}.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after "pid (comm)": state is fields[0], utime fields[11], stime fields[12]
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


# -- one server, one measurement ------------------------------------------------


class Server:
    """
    A running echo server (C{python bench/echo_server.py KIND PORT}); use as a
    context manager, it is stopped on exit.
    """

    def __init__(self, kind: str, prefix: list[str], python: str = sys.executable, timeout: float = 20.0) -> None:
        self.kind = kind
        self.port = free_port()
        self._log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [*prefix, python, str(SERVER), kind, str(self.port)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if line.strip() == "ready" or not line:
                    break
            elif self.process.poll() is not None:
                break
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"the {kind} server did not start:\n{self.log()}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the reactor stops cleanly
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()


def run_loadgen(port: int, params: Params, prefix: list[str], server_pid: int | None = None) -> dict[str, Any]:
    """
    Run the load generator once against C{127.0.0.1:port}; return its JSON
    result, plus C{server_cpu_percent} when C{server_pid} is given (sampled
    at the generator's MEASURE_START / MEASURE_END marks).
    """
    command = [
        *prefix,
        str(LOADGEN),
        "--port", str(port),
        "--path", params.path,
        "--connections", str(params.connections),
        "--inflight", str(params.inflight),
        "--size", str(params.size),
        "--warmup", str(params.warmup),
        "--duration", str(params.duration),
        "--marks",
    ]  # fmt: skip
    if params.binary:
        command.append("--binary")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    marks: dict[str, tuple[float, float]] = {}
    messages = []
    for line in process.stderr:  # the marks come while the generator runs
        line = line.rstrip("\n")
        if line in ("MEASURE_START", "MEASURE_END"):
            if server_pid is not None:
                try:
                    marks[line] = (time.monotonic(), cpu_seconds(server_pid))
                except OSError:  # the server is gone
                    pass
        else:
            messages.append(line)
    out = process.stdout.read()
    if process.wait() != 0 or not out.strip():
        raise RuntimeError(f"the load generator failed (exit {process.returncode}):\n" + "\n".join(messages))
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["loadgen_messages"] = messages
    if len(marks) == 2:
        (t0, c0), (t1, c1) = marks["MEASURE_START"], marks["MEASURE_END"]
        result["server_cpu_percent"] = round((c1 - c0) / (t1 - t0) * 100, 1) if t1 > t0 else None
    return result


def measure(kind: str, params: Params, server_prefix: list[str], loadgen_prefix: list[str]) -> dict[str, Any]:
    """
    Start a fresh C{kind} server, load it once, stop it; return the result.
    """
    with Server(kind, server_prefix) as server:
        result = run_loadgen(server.port, params, loadgen_prefix, server.pid)
        if server.process.poll() is not None:
            raise RuntimeError(f"the {kind} server died during the run:\n{server.log()}")
        log = server.log().strip()
    result["server"] = kind
    if log:
        result["server_log"] = log[-2000:]
    return result


# -- reporting -------------------------------------------------------------------


def summarize(kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["messages_per_s"] for r in runs]
    median = statistics.median(rates)
    size = runs[0]["size"]
    server_cpu = [r["server_cpu_percent"] for r in runs if r.get("server_cpu_percent") is not None]
    return {
        "server": kind,
        "runs": len(runs),
        "messages_per_s": round(median, 1),
        "messages_per_s_min": round(min(rates), 1),
        "messages_per_s_max": round(max(rates), 1),
        "mb_per_s": round(median * size / 1e6, 2),
        "loadgen_cpu_percent": round(statistics.median(r["loadgen_cpu_percent"] for r in runs), 1),
        "loadgen_cpu_percent_max": round(max(r["loadgen_cpu_percent"] for r in runs), 1),
        "server_cpu_percent": round(statistics.median(server_cpu), 1) if server_cpu else None,
        "errors": sum(r["errors"] for r in runs),
        "connections_lost": sum(r["connections"] - r["connections_open"] for r in runs),
    }


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import twisted

        info["twisted"] = twisted.__version__
    except ImportError:
        pass
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True)
        if rev.returncode == 0:
            info["txpulse_git"] = rev.stdout.strip() + ("+dirty src" if dirty.stdout.strip() else "")
    except OSError:
        pass
    return info


def default_output(size: int) -> Path:
    if size < 1024:
        return RESULTS / "echo-small.json"
    label = f"{size // 1024}KiB" if size % 1024 == 0 else f"{size}B"
    return RESULTS / f"echo-{label}.json"


def table(summaries: list[dict[str, Any]], size: int) -> str:
    lines = [
        f"{'server':<10} {'msg/s':>10} {'(min .. max)':>22} {'MB/s':>9} {'server CPU':>11} {'loadgen CPU':>12} {'errors':>7}",
    ]
    for s in summaries:
        server_cpu = "-" if s["server_cpu_percent"] is None else f"{s['server_cpu_percent']:.0f}%"
        lines.append(
            f"{s['server']:<10} {s['messages_per_s']:>10,.0f} "
            f"{'(' + format(s['messages_per_s_min'], ',.0f') + ' .. ' + format(s['messages_per_s_max'], ',.0f') + ')':>22} "
            f"{s['mb_per_s']:>9.2f} {server_cpu:>11} {s['loadgen_cpu_percent']:>11.0f}% {s['errors']:>7}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    defaults = Params()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="txpulse,twisted", help="comma-separated kinds from echo_server.py; the ratio is first/second")
    parser.add_argument("--runs", type=int, default=3, help="runs per server (default 3); the median is reported")
    parser.add_argument("--connections", type=int, default=defaults.connections)
    parser.add_argument("--inflight", type=int, default=defaults.inflight, help="messages in flight per connection")
    parser.add_argument("--size", type=int, default=defaults.size, help="message size in bytes")
    parser.add_argument("--warmup", type=float, default=defaults.warmup, help="seconds before counting")
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds counted")
    parser.add_argument("--binary", action="store_true", help="binary messages instead of text")
    parser.add_argument("--server-cpu", type=int, default=0, help="core for the server (default 0)")
    parser.add_argument("--loadgen-cpu", type=int, default=1, help="core for the load generator (default 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/echo-small.json or echo-<size>.json)")
    args = parser.parse_args(argv)

    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    if not kinds or args.runs < 1:
        parser.error("need at least one server and one run")
    params = Params(
        connections=args.connections,
        inflight=args.inflight,
        size=args.size,
        warmup=args.warmup,
        duration=args.duration,
        binary=args.binary,
    )
    build_loadgen()
    server_prefix, loadgen_prefix = pinning(args.server_cpu, args.loadgen_cpu, not args.no_pin)

    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    print(
        f"echo: {params.connections} connections x {params.inflight} in flight, "
        f"{params.size}-byte {'binary' if params.binary else 'text'} messages, "
        f"{params.warmup:g} s warm-up + {params.duration:g} s measured, {args.runs} runs",
        flush=True,
    )
    for run in range(args.runs):
        order = kinds if run % 2 == 0 else kinds[::-1]
        for kind in order:
            result = measure(kind, params, server_prefix, loadgen_prefix)
            runs[kind].append(result)
            server_cpu = result.get("server_cpu_percent")
            print(
                f"  run {run + 1}/{args.runs} {kind:<10} {result['messages_per_s']:>12,.0f} msg/s"
                f"  server CPU {'-' if server_cpu is None else format(server_cpu, '.0f') + '%'}"
                f"  loadgen CPU {result['loadgen_cpu_percent']:.0f}%"
                + (f"  errors {result['errors']}" if result["errors"] else ""),
                flush=True,
            )
            for message in result["loadgen_messages"]:
                print(f"    loadgen: {message}", file=sys.stderr)

    summaries = [summarize(k, runs[k]) for k in kinds]
    print()
    print(table(summaries, params.size))
    ratio = None
    if len(kinds) >= 2 and summaries[1]["messages_per_s"]:
        ratio = round(summaries[0]["messages_per_s"] / summaries[1]["messages_per_s"], 2)
        print(f"\nratio {kinds[0]}/{kinds[1]}: {ratio:.2f}x (medians)")
    notes = []
    for s in summaries:
        if s["loadgen_cpu_percent_max"] >= LOADGEN_SATURATED:
            notes.append(
                f"the load generator reached {s['loadgen_cpu_percent_max']:.0f}% CPU against {s['server']}: "
                "it may be the bottleneck, so that figure is a lower bound"
            )
        if s["server_cpu_percent"] is not None and s["server_cpu_percent"] < SERVER_SATURATED:
            notes.append(
                f"{s['server']} used only {s['server_cpu_percent']:.0f}% of its core: not saturated "
                "(raise --inflight or --connections, or the generator is limiting)"
            )
        if s["errors"] or s["connections_lost"]:
            notes.append(f"{s['server']}: {s['errors']} errors, {s['connections_lost']} connections lost (see stderr)")
    if not notes:
        notes.append(f"the load generator stayed under {LOADGEN_SATURATED:.0f}% CPU: the servers were the bottleneck")
    for note in notes:
        print("note:", note)

    output = args.output or default_output(params.size)
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "echo",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "params": asdict(params) | {"runs": args.runs, "pinned": bool(server_prefix)},
        "machine": machine(),
        "summary": summaries,
        "ratio": {f"{kinds[0]}/{kinds[1]}": ratio} if ratio is not None else {},
        "notes": notes,
        "runs": [r | {"run": i + 1} for k in kinds for i, r in enumerate(runs[k])],
    }
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
