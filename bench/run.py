"""
The benchmark suite (issue 7): txpulse and its peers side by side, one
sitting, one command.

    .venv/bin/python bench/run.py                 # everything, ~10 minutes
    .venv/bin/python bench/run.py --quick         # a ~25 s smoke version (CI)
    .venv/bin/python bench/run.py --scenarios echo32,fanout --servers txpulse,picows
    .venv/bin/python bench/run.py --scenarios idle --servers txpulse,picows --baseline HEAD~3

Servers (bench/echo_server.py, each its own process on loopback, pinned to
one core while bench/loadgen, in C, runs pinned to the other): txpulse,
Twisted's twisted.web.websocket, autobahn on Twisted, websockets (asyncio),
aiohttp and picows. A peer whose package is not installed is skipped, with a
note.

Scenarios (each figure the median of --runs runs; servers alternate within a
run, ABC.. then ..CBA, so drift hits all alike):

  echo32    64 connections x 32 messages of 32 bytes in flight: messages/s
  twogen    against txpulse and picows, back to back on the same server
            process: the echo32 load from one generator (64 connections),
            then the same load from two (32 + 32 connections), in
            alternating order: if the figure does not rise, one generator
            was not the bottleneck
  latency   a fixed, moderate rate (10,000 msg/s over 64 connections, paced):
            round-trip p50/p99
  echo64k   64 connections x 4 binary messages of 64 KiB in flight: MB/s
  idle      10,000 idle connections with heartbeats on (a ping every
            --heartbeat seconds of silence): handshakes/s while opening them,
            server RSS per connection (VmRSS after - before, / N), and the
            server's CPU over one full heartbeat period with all of them open
  fanout    1 publisher, 1,000 subscribers on the pub/sub endpoint (txpulse's
            hub; a minimal broadcast server for each peer): deliveries/s with
            32 publishes in flight, and for bursts of 100 publishes sent at
            once the time until the FIRST subscriber has the first message
  deflate   txpulse with permessage-deflate accepted vs not: echo32 msg/s and
            RSS per connection (1,000 connections that each exchanged one
            message, heartbeats on)
  loopfan   the fan-out load against the code most users write with
            Twisted's API: a loop of sendTextMessage over the subscribers
            (bench/echo_server.py --app loop: the same protocol class on
            txpulse's resource and on Twisted's; each peer's own minimal
            broadcast server): deliveries/s with 32 publishes in flight, and
            bursts of 1,000 publishes to 1,000 subscribers (a million
            deliveries each): deliveries/s over the burst, first delivery

Output: a table on the terminal, bench/results/summary.json (parameters, the
machine, every run), bench/results/summary.png (matplotlib) and
bench/results/summary.md (the tables, for the README). See bench/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import importlib.metadata
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from echo import (  # noqa: E402
    BASELINES,
    LOADGEN,
    LOADGEN_SATURATED,
    NOISY,
    OTHER_BUSY,
    RESULTS,
    ROOT,
    SERVER_SATURATED,
    Params,
    Server,
    build_loadgen,
    cpu_seconds,
    machine,
    machine_cpu_seconds,
    measure,
    pinning,
    profile_summary,
    run_loadgen,
    source_digest,
    wait_for_quiet,
)
from echo_server import SERVERS  # noqa: E402

#: The suite's server kinds (bench/echo_server.py's), txpulse first; the import each needs.
KINDS = {name: kind.package for name, kind in SERVERS.items() if kind.suite}

#: The targets of issue 7.
TARGET_ECHO_VS_TWISTED = 6.0
TARGET_ECHO_VS_PICOWS = 1.2
TARGET_IDLE_BYTES = 8000  # "< 8 kB" per idle connection, read strictly (8,000 bytes)
TARGET_FANOUT_VS_BEST = 2.0
TARGET_HEARTBEAT_CPU = 5.0  # % of one core at 10k idle
TARGET_FIRST_DELIVERY_MS = 5.0  # "at once": well before the burst is through
#: Issue 14: a plain loop of sends fans out at >= 2x Twisted's own resource,
#: the first delivery of a burst within 1 ms.
TARGET_LOOP_VS_TWISTED = 2.0
TARGET_LOOP_FIRST_MS = 1.0


@dataclass(frozen=True)
class Settings:
    runs: int = 3
    warmup: float = 0.5
    duration: float = 1.5
    latency_rate: float = 10000.0
    idle_connections: int = 10000
    heartbeat: float = 20.0
    concurrency: int = 64
    fanout_subscribers: int = 1000
    fanout_inflight: int = 32
    burst: int = 100
    bursts: int = 2
    loop_burst: int = 1000
    deflate_connections: int = 1000
    quiet_wait: float = 2.0
    #: Seconds idle connections are held after opening before RSS is read
    #: (the idle scenario holds them one heartbeat period longer).
    settle: float = 2.0
    #: Seconds the whole sitting may spend repeating measurements that other
    #: processes disturbed (a busy shared machine must not make it run for hours).
    retry_budget: float = 60.0


QUICK = Settings(
    runs=1,
    warmup=0.2,
    duration=0.4,
    latency_rate=2000.0,
    idle_connections=300,
    heartbeat=1.0,
    fanout_subscribers=100,
    burst=20,
    bursts=1,
    loop_burst=50,
    deflate_connections=50,
    quiet_wait=0.0,
    settle=1.0,
    retry_budget=0.0,
)


# -- helpers ---------------------------------------------------------------------------


def log(*args: Any) -> None:
    print(*args, flush=True)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def quiet(max_wait: float) -> float:
    """
    Wait up to C{max_wait} seconds for the machine to be idle (other
    processes under OTHER_BUSY% of a core over a quarter second).
    """
    return wait_for_quiet(max_wait, OTHER_BUSY, interval=0.25) if max_wait > 0 else 0.0


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def addBaseline(revision: str) -> str:
    """
    Check out txpulse as of C{revision} in a temporary git worktree (removed
    when the suite exits) and add it as a server kind, C{txpulse@REV}: its
    own C{bench/echo_server.py} serving its own C{src/}, measured like
    C{txpulse}, alternating with it. Returns the kind's name.
    """
    short = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision], check=True, capture_output=True, text=True
    ).stdout.strip()
    tree = Path(tempfile.mkdtemp(prefix="txpulse-baseline-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision], check=True, capture_output=True
    )
    atexit.register(
        subprocess.run, ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True
    )
    label = f"txpulse@{short}"
    KINDS[label] = KINDS["txpulse"]
    BASELINES[label] = tree / "bench" / "echo_server.py"
    return label


def available(kind: str) -> str | None:
    """
    C{None} if the peer can run here, else why not.
    """
    module = KINDS[kind]
    if importlib.util.find_spec(module) is None:
        return f"{kind}: the {module!r} package is not installed (pip install -r bench/requirements.txt)"
    return None


def versions() -> dict[str, str]:
    found = {}
    for package in (*KINDS.values(), "aiofastnet", "matplotlib", "txpulse"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        from autobahn.websocket import USES_NVX

        found["autobahn_nvx"] = str(USES_NVX)
    except ImportError:
        pass
    try:
        cc = subprocess.run([os.environ.get("CC", "gcc"), "--version"], capture_output=True, text=True)
        found["loadgen_cc"] = cc.stdout.splitlines()[0] if cc.returncode == 0 else "?"
    except OSError:
        pass
    return found


class Bench:
    """
    One sitting: pinning, settings, the runs collected, the notes.
    """

    def __init__(self, settings: Settings, kinds: list[str], pin: bool) -> None:
        self.s = settings
        self.kinds = kinds
        self.server_prefix, self.loadgen_prefix = pinning(0, 1, pin)
        self.server_core = 0 if self.server_prefix else None
        self.notes: list[str] = []
        self.results: dict[str, Any] = {}
        self.output = RESULTS
        self.retry_spent = 0.0
        self.retries = 0
        self.timings: dict[str, float] = {}

    def note(self, text: str) -> None:
        self.notes.append(text)
        log(f"  note: {text}")

    def once(self, label: str, function: Any, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """
        One measurement, repeated once if other processes (or the
        hypervisor, stealing time) disturbed it; C{None} (with a note) if it
        failed.
        """

        def disturbance(result: dict[str, Any]) -> float:
            return float((result.get("other_cpu_percent") or 0) + (result.get("steal_percent") or 0))

        best = None
        for attempt in range(2):
            quiet(self.s.quiet_wait if self.retry_spent < self.s.retry_budget else 0.3)
            started = time.monotonic()
            try:
                result = function(*args, **kwargs)
            except Exception as failure:  # a server that does not start, a generator that fails
                self.note(f"{label}: failed: {str(failure).strip()[:600]}")
                return best
            if attempt:
                self.retry_spent += time.monotonic() - started
            if best is None or disturbance(result) < disturbance(best):
                best = result
            if disturbance(result) < NOISY:
                break
            what = (
                f"other processes used {result.get('other_cpu_percent') or 0:.0f}% of a core, "
                f"the hypervisor stole {result.get('steal_percent') or 0:.0f}%"
            )
            if self.retry_spent >= self.s.retry_budget:
                log(f"  {label}: {what} (retry budget spent)")
                break
            self.retries += 1
            log(f"  {label}: {what}; repeating")
        best["attempts"] = attempt + 1
        return best

    # -- running: one sitting of a scenario ----------------------------------------------

    def sitting(
        self,
        name: str,
        kinds: list[str],
        runs: int,
        measure_one: Callable[[str], dict[str, Any]],
        line: Callable[[int, str, dict[str, Any]], str],
        alternate: bool = True,
    ) -> dict[str, list[dict[str, Any]]]:
        """
        C{runs} runs of C{measure_one(kind)} for each kind (in alternating
        order, ABC.. then ..CBA, unless C{alternate} is false), each logged
        as C{line(run, kind, result)}; the results by kind.
        """
        by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
        for run in range(runs):
            for kind in kinds if run % 2 == 0 or not alternate else kinds[::-1]:
                result = self.once(f"{name} {kind}", measure_one, kind)
                if result is None:
                    continue
                by_kind[kind].append(result)
                log(line(run, kind, result))
                for message in result.get("loadgen_messages", [])[:5]:
                    log(f"    loadgen: {message}")
        return by_kind

    def throughput(
        self,
        name: str,
        kinds: list[str],
        params: Params,
        server_args: list[str] | None = None,
        extra: list[str] | None = None,
        key: str = "messages_per_s",
        show: Callable[[dict[str, Any]], str] | None = None,
        kind_args: dict[str, list[str]] | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """
        A scenario measured in the generator's window: C{--runs} runs of
        C{measure} per kind. A kind C{K+variant} runs server C{K} with
        C{kind_args[K+variant]} added; C{extra} goes to the generator
        (plus C{--deflate} when the server has it); C{show(result)} is the
        figure logged per run (default: C{key}).
        """

        def one(kind: str) -> dict[str, Any]:
            args = list(server_args or []) + list((kind_args or {}).get(kind, []))
            generator = list(extra or []) + (["--deflate"] if "--deflate" in args else [])
            result = measure(
                kind.split("+")[0],
                params,
                self.server_prefix,
                self.loadgen_prefix,
                self.server_core,
                None,
                args,
                generator,
            )
            result["server"] = kind
            return result

        def line(run: int, kind: str, result: dict[str, Any]) -> str:
            figure = show(result) if show else f"{result[key]:>12,.0f} {key.replace('_per_s', '/s')}"
            return (
                f"  {name} run {run + 1}/{self.s.runs} {kind:<16} {figure}"
                f"  server CPU {_pct(result.get('server_cpu_percent'))}"
                f" (core {_pct(result.get('server_core_percent'))})"
                f"  loadgen CPU {_pct(result.get('loadgen_cpu_percent'))}"
                + (f"  errors {result['errors']}" if result.get("errors") else "")
            )

        return self.sitting(name, kinds, self.s.runs, one, line)

    def summarize(self, name: str, runs: dict[str, list[dict[str, Any]]], key: str) -> dict[str, dict[str, Any]]:
        """
        The medians (and spread) of C{key} and of the CPU figures, by kind,
        with a note for every figure that needs one.
        """
        out = {}
        for kind, rs in runs.items():
            if not rs:
                continue
            values = [r[key] for r in rs]
            summary = {
                key: round(statistics.median(values), 1),
                f"{key}_min": round(min(values), 1),
                f"{key}_max": round(max(values), 1),
                "runs": len(rs),
                "server_cpu_percent": median([r.get("server_cpu_percent") for r in rs]),
                "server_core_percent": median([r.get("server_core_percent") for r in rs]),
                "loadgen_cpu_percent": median([r.get("loadgen_cpu_percent") for r in rs]),
                "loadgen_cpu_percent_max": max((r.get("loadgen_cpu_percent") or 0) for r in rs),
                "other_cpu_percent_max": max((r.get("other_cpu_percent") or 0) for r in rs),
                "steal_percent_max": max((r.get("steal_percent") or 0) for r in rs),
                "errors": sum(r.get("errors", 0) for r in rs),
            }
            out[kind] = summary
            if summary["loadgen_cpu_percent_max"] >= LOADGEN_SATURATED:
                self.note(
                    f"{name}: the generator reached {summary['loadgen_cpu_percent_max']:.0f}% CPU against {kind}: "
                    "that figure is a lower bound"
                )
            elif summary["loadgen_cpu_percent_max"] >= 75:
                self.note(
                    f"{name}: the generator reached {summary['loadgen_cpu_percent_max']:.0f}% CPU against {kind}: "
                    "little headroom left (the figure may be slightly low)"
                )
            busy = summary["server_core_percent"] or summary["server_cpu_percent"]
            if busy is not None and busy < SERVER_SATURATED:
                self.note(f"{name}: {kind} kept its core only {busy:.0f}% busy: not saturated")
            if summary["errors"]:
                self.note(f"{name}: {kind}: {summary['errors']} errors (see the runs in the JSON)")
            if summary["other_cpu_percent_max"] >= OTHER_BUSY:
                self.note(
                    f"{name}: other processes used up to {summary['other_cpu_percent_max']:.0f}% of a core "
                    f"while {kind} was measured"
                )
            if summary["steal_percent_max"] >= OTHER_BUSY:
                self.note(
                    f"{name}: the hypervisor stole up to {summary['steal_percent_max']:.0f}% of the CPU "
                    f"while {kind} was measured"
                )
        return out

    def measured(
        self, name: str, params: Params, key: str = "messages_per_s", kinds: list[str] | None = None, **options: Any
    ) -> dict[str, Any]:
        """
        Run the throughput-like scenario C{name} against C{kinds} (default:
        all; C{options}: those of L{throughput}), summarize it by C{key} and
        store it in the results.
        """
        runs = self.throughput(name, kinds or self.kinds, params, key=key, **options)
        self.results[name] = {"params": asdict(params), "summary": self.summarize(name, runs, key), "runs": runs}
        return self.results[name]

    # -- scenarios ---------------------------------------------------------------------

    def params(self, scenario: str) -> Params:
        """
        The generator's parameters in C{scenario} (echo32, latency and
        deflate: its defaults, 64 connections x 32 in flight, 32 B text,
        every byte verified).
        """
        s = self.s
        if scenario == "echo64k":
            return Params(inflight=4, size=65536, binary=True, verify=False, warmup=s.warmup, duration=s.duration)
        if scenario == "fanout":
            return Params(
                connections=s.fanout_subscribers,
                inflight=s.fanout_inflight,
                warmup=s.warmup,
                duration=s.duration,
                verify=False,
                path="/pubsub",
            )
        return Params(warmup=s.warmup, duration=s.duration)

    def echo32(self) -> None:
        log("\n== echo 32 B: 64 connections x 32 in flight, text, verified")
        self.measured("echo32", self.params("echo32"))

    def twogen(self) -> None:
        kinds = [k for k in ("txpulse", "picows") if k in self.kinds]
        if not kinds:
            return
        log(
            "\n== one generator (64 connections) vs two (2 x 32), 32 x 32 B in flight each, "
            "back to back on one server process"
        )
        one = self.params("echo32")
        half = replace(one, connections=one.connections // 2)
        counter = itertools.count()

        def line(run: int, kind: str, result: dict[str, Any]) -> str:
            return (
                f"  twogen run {run + 1} {kind:<10} one {result['one_generator_messages_per_s']:>10,.0f} msg/s"
                f"  two {result['messages_per_s']:>10,.0f} msg/s"
                f"  (generators {result['per_generator'][0]:,.0f} + {result['per_generator'][1]:,.0f})"
                f"  = {result['two_over_one']:.2f}x  server CPU {_pct(result.get('server_cpu_percent'))}"
                f"  loadgen CPU {_pct(result['loadgen_cpu_percent'])} in all"
            )

        runs = self.sitting(
            "twogen",
            kinds,
            max(1, self.s.runs),
            lambda k: self._one_then_two_generators(k, one, half, twoFirst=next(counter) % 2 == 1),
            line,
            False,
        )
        summary = self.summarize("twogen", runs, "messages_per_s")
        for kind, s in summary.items():
            rs = runs[kind]
            s["one_generator_messages_per_s"] = round(
                statistics.median(r["one_generator_messages_per_s"] for r in rs), 1
            )
            s["two_over_one"] = round(statistics.median(r["two_over_one"] for r in rs), 3)
            verdict = (
                "did not raise the figure: one generator is not the bottleneck"
                if s["two_over_one"] < 1.05
                else "RAISED the figure: the single-generator figure is a lower bound"
            )
            self.note(
                f"twogen: {kind}: two generators {s['two_over_one']:.2f}x one generator (median of runs); {verdict}"
            )
        self.results["twogen"] = {"params": asdict(half) | {"generators": 2}, "summary": summary, "runs": runs}

    def _one_then_two_generators(self, kind: str, one: Params, half: Params, twoFirst: bool) -> dict[str, Any]:
        """
        Against one C{kind} server process: the load C{one} from a single
        generator and the same load split over two generators (C{half} each),
        in the order C{twoFirst} says, so that a drift of the machine hits
        both alike.
        """
        with Server(kind, self.server_prefix) as server:
            if twoFirst:
                results = self._generators(server, half, 2)
                single = self._generators(server, one, 1)[0]
            else:
                single = self._generators(server, one, 1)[0]
                results = self._generators(server, half, 2)
        first = results[0]
        total = sum(r["messages_per_s"] for r in results)
        loadgen = sum(r["loadgen_cpu_percent"] for r in results)
        return {
            "server": kind,
            "messages_per_s": total,
            "one_generator_messages_per_s": single["messages_per_s"],
            "one_generator_loadgen_cpu_percent": single["loadgen_cpu_percent"],
            "two_over_one": total / single["messages_per_s"] if single["messages_per_s"] else 0.0,
            "steal_percent": max(r.get("steal_percent") or 0 for r in (*results, single)),
            "per_generator": [r["messages_per_s"] for r in results],
            "server_cpu_percent": first.get("server_cpu_percent"),
            "server_core_percent": first.get("server_core_percent"),
            "loadgen_cpu_percent": loadgen,
            "other_cpu_percent": max(0.0, (first.get("other_cpu_percent") or 0) - results[1]["loadgen_cpu_percent"]),
            "errors": sum(r["errors"] for r in results) + single["errors"],
            "generators": results,
        }

    def _generators(self, server: Server, params: Params, count: int) -> list[dict[str, Any]]:
        """
        C{count} generators loading C{server} at once with C{params} each;
        the first samples the server's CPU.
        """
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            futures = [
                pool.submit(
                    run_loadgen,
                    server.port,
                    params,
                    self.loadgen_prefix,
                    server.pid if i == 0 else None,
                    self.server_core if i == 0 else None,
                )
                for i in range(count)
            ]
            return [f.result() for f in futures]

    def latency(self) -> None:
        rate = self.s.latency_rate
        log(f"\n== latency: {rate:,.0f} msg/s in all, paced over 64 connections, 32 B")
        params = self.params("latency")

        def show(r: dict[str, Any]) -> str:
            lat = r["latency_us"]
            return f"p50 {lat['p50']:>7,.0f} us  p99 {lat['p99']:>7,.0f} us  ({r['messages_per_s']:,.0f} msg/s)"

        runs = self.throughput("latency", self.kinds, params, extra=["--mode", "rate", "--rate", str(rate)], show=show)
        summary = {}
        for kind, rs in runs.items():
            if not rs:
                continue
            summary[kind] = {
                **{f"{p}_us": median([r["latency_us"][p] for r in rs]) for p in ("p50", "p90", "p99", "p999")},
                "max_us": max(r["latency_us"]["max"] for r in rs),
                "messages_per_s": median([r["messages_per_s"] for r in rs]),
                "server_cpu_percent": median([r.get("server_cpu_percent") for r in rs]),
                "loadgen_cpu_percent": median([r.get("loadgen_cpu_percent") for r in rs]),
                "loadgen_cpu_percent_max": max((r.get("loadgen_cpu_percent") or 0) for r in rs),
                "sends_skipped": sum(r.get("sends_skipped", 0) for r in rs),
                "errors": sum(r.get("errors", 0) for r in rs),
                "runs": len(rs),
            }
            if summary[kind]["messages_per_s"] < 0.97 * rate:
                self.note(
                    f"latency: {kind} kept up with only {summary[kind]['messages_per_s']:,.0f} of {rate:,.0f} msg/s"
                )
        self.results["latency"] = {"params": asdict(params) | {"rate": rate}, "summary": summary, "runs": runs}

    def echo64k(self) -> None:
        log("\n== echo 64 KiB: 64 connections x 4 in flight, binary (masking speed), size and type checked")
        self.measured(
            "echo64k",
            self.params("echo64k"),
            key="payload_mb_per_s",
            show=lambda r: f"{r['payload_mb_per_s']:>9,.0f} MB/s",
        )

    def _idle_once(
        self, kind: str, n: int, idle_messages: int = 0, deflate: bool = False, cpu_window: bool = True
    ) -> dict[str, Any]:
        h = self.s.heartbeat
        args = ["--heartbeat", str(h)] + (["--deflate"] if deflate else [])
        hold = h + self.s.settle if cpu_window else self.s.settle
        with Server(kind, self.server_prefix, args=args) as server:
            time.sleep(0.3)
            rss_before = rss_kib(server.pid)
            command = [
                *self.loadgen_prefix,
                str(LOADGEN),
                "--port", str(server.port),
                "--path", "/echo",
                "--mode", "idle",
                "--connections", str(n),
                "--concurrency", str(self.s.concurrency),
                "--hold", str(hold),
                "--connect-timeout", "120",
                "--idle-messages", str(idle_messages),
                "--marks",
            ] + (["--deflate"] if deflate else [])  # fmt: skip
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert process.stdout is not None and process.stderr is not None
            messages = []
            window: dict[str, Any] = {}
            rss_open = rss_end = None
            for line in process.stderr:
                line = line.rstrip("\n")
                if line.startswith("OPEN "):
                    window["t0"], window["cpu0"] = time.monotonic(), cpu_seconds(server.pid)
                    window["machine0"] = machine_cpu_seconds()[0]
                    window["pings0"] = 0
                elif line.startswith("TICK "):
                    _, second, pings, _open = line.split()
                    k = int(second)
                    if k == 1:
                        rss_open = rss_kib(server.pid)
                    if cpu_window and k == int(h) and "t0" in window:
                        window["t1"], window["cpu1"] = time.monotonic(), cpu_seconds(server.pid)
                        window["machine1"] = machine_cpu_seconds()[0]
                        window["pings1"] = int(pings)
                    if k == max(1, int(hold) - 1):
                        rss_end = rss_kib(server.pid)
                else:
                    messages.append(line)
            out = process.stdout.read()
            if process.wait() != 0 or not out.strip():
                raise RuntimeError(f"the load generator failed (exit {process.returncode}):\n" + "\n".join(messages))
            if server.process.poll() is not None:
                raise RuntimeError(f"the {kind} server died:\n{server.log()[-1500:]}")
            result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        n_open = result["connections_open"] or 1
        rss_final = rss_end if rss_end is not None else rss_open
        result |= {
            "server": kind,
            "heartbeat": h,
            "rss_before_kib": rss_before,
            "rss_open_kib": rss_open,
            "rss_end_kib": rss_final,
            "bytes_per_connection": round((rss_final - rss_before) * 1024 / n_open) if rss_final else None,
            "bytes_per_connection_at_open": round((rss_open - rss_before) * 1024 / n_open) if rss_open else None,
            "loadgen_messages": messages,
        }
        if "t1" in window:
            wall = window["t1"] - window["t0"]
            result["heartbeat_window_s"] = round(wall, 2)
            result["server_cpu_percent"] = round((window["cpu1"] - window["cpu0"]) / wall * 100, 2)
            result["pings_in_window"] = window["pings1"] - window["pings0"]
            machine = (window["machine1"] - window["machine0"]) / wall * 100
            result["other_cpu_percent"] = round(
                max(0.0, machine - result["server_cpu_percent"] - result["loadgen_cpu_percent"]), 1
            )
        return result

    def idle(self) -> None:
        n, h = self.s.idle_connections, self.s.heartbeat
        log(
            f"\n== idle: {n:,} connections, heartbeat every {h:g} s of silence; RSS per connection; "
            f"server CPU over one heartbeat period"
        )

        def line(run: int, kind: str, result: dict[str, Any]) -> str:
            return (
                f"  idle {kind:<10} {result['handshakes_per_s']:>8,.0f} handshakes/s"
                f"  {result['connections_open']:,} open"
                f"  {result['bytes_per_connection'] or 0:>7,} B/conn (RSS {result['rss_before_kib'] / 1024:.0f}"
                f" -> {(result['rss_end_kib'] or 0) / 1024:.0f} MiB)"
                f"  heartbeat CPU {result.get('server_cpu_percent', float('nan')):.1f}%"
                f" ({result.get('pings_in_window', 0):,} pings in {result.get('heartbeat_window_s', 0):.0f} s)"
                f"  loadgen CPU {_pct(result['loadgen_cpu_percent'])}"
                + (f"  errors {result['errors']}" if result["errors"] else "")
            )

        # one run each: it is the slowest scenario
        runs = self.sitting("idle", self.kinds, 1, lambda kind: self._idle_once(kind, n), line)
        summary = {}
        for kind, rs in runs.items():
            if not rs:
                continue
            summary[kind] = {
                "handshakes_per_s": median([r["handshakes_per_s"] for r in rs]),
                "connections_open": min(r["connections_open"] for r in rs),
                "bytes_per_connection": median([r["bytes_per_connection"] for r in rs]),
                "bytes_per_connection_at_open": median([r["bytes_per_connection_at_open"] for r in rs]),
                "heartbeat_cpu_percent": median([r.get("server_cpu_percent") for r in rs]),
                "pings_in_window": median([r.get("pings_in_window") for r in rs]),
                "loadgen_cpu_percent": median([r["loadgen_cpu_percent"] for r in rs]),
                "errors": sum(r["errors"] for r in rs),
                "runs": len(rs),
            }
            if summary[kind]["connections_open"] < n:
                self.note(f"idle: {kind}: only {summary[kind]['connections_open']:,} of {n:,} connections stayed open")
            if summary[kind]["errors"]:
                self.note(f"idle: {kind}: {summary[kind]['errors']} errors")
        self.results["idle"] = {
            "params": {
                "connections": n,
                "heartbeat": h,
                "concurrency": self.s.concurrency,
                "runs": 1,
                "cpu_window": "from the moment all are open, one heartbeat period (each connection's first ping falls in it)",
            },
            "summary": summary,
            "runs": runs,
        }

    def fanout(self) -> None:
        s = self.s
        log(
            f"\n== fan-out: 1 publisher, {s.fanout_subscribers:,} subscribers, {s.fanout_inflight} publishes in "
            f"flight (32-byte data); bursts of {s.burst} publishes"
        )
        params = self.params("fanout")

        def show(r: dict[str, Any]) -> str:
            return (
                f"{r['deliveries_per_s']:>10,.0f} deliveries/s  first delivery {r['burst_first_delivery_ms_median']:>7.1f} ms"
                f"  whole burst {r['burst_all_delivered_ms_median']:>7.1f} ms"
            )

        fanout = self.measured(
            "fanout",
            params,
            key="deliveries_per_s",
            show=show,
            server_args=["--app", "pubsub"],
            extra=["--mode", "fanout", "--burst", str(s.burst), "--bursts", str(s.bursts), "--concurrency", "64"],
        )
        for kind, summary in fanout["summary"].items():
            rs = fanout["runs"][kind]
            summary["first_delivery_ms"] = median([r["burst_first_delivery_ms_median"] for r in rs])
            summary["burst_all_delivered_ms"] = median([r["burst_all_delivered_ms_median"] for r in rs])
        fanout["params"] |= {"burst": s.burst, "bursts": s.bursts, "publish_data_bytes": params.size}

    def loopfan(self) -> None:
        s = self.s
        log(
            f"\n== fan-out by a plain loop of sends: 1 publisher, {s.fanout_subscribers:,} subscribers, "
            f"{s.fanout_inflight} publishes in flight; bursts of {s.loop_burst} publishes"
        )
        params = self.params("fanout")

        def burstRate(r: dict[str, Any]) -> float:
            return r["burst"] * r["subscribers_open"] / r["burst_all_delivered_ms_median"] * 1e3

        def show(r: dict[str, Any]) -> str:
            return (
                f"{r['deliveries_per_s']:>10,.0f} deliveries/s  bursts {burstRate(r):>10,.0f} deliveries/s"
                f"  first delivery {r['burst_first_delivery_ms_median']:>7.2f} ms"
                f"  whole burst {r['burst_all_delivered_ms_median']:>8.1f} ms"
            )

        loopfan = self.measured(
            "loopfan",
            params,
            key="deliveries_per_s",
            show=show,
            server_args=["--app", "loop"],
            extra=["--mode", "fanout", "--burst", str(s.loop_burst), "--bursts", str(s.bursts), "--concurrency", "64"],
        )
        for kind, summary in loopfan["summary"].items():
            rs = loopfan["runs"][kind]
            summary["burst_deliveries_per_s"] = median([burstRate(r) for r in rs])
            summary["first_delivery_ms"] = median([r["burst_first_delivery_ms_median"] for r in rs])
            summary["burst_all_delivered_ms"] = median([r["burst_all_delivered_ms_median"] for r in rs])
        loopfan["params"] |= {"burst": s.loop_burst, "bursts": s.bursts, "publish_data_bytes": params.size}

    def deflate(self) -> None:
        if "txpulse" not in self.kinds:
            return
        log("\n== permessage-deflate on vs off (txpulse): echo 32 B msg/s, then RSS per connection")
        deflate = self.measured(
            "deflate",
            self.params("deflate"),
            kinds=["txpulse", "txpulse+deflate"],
            kind_args={"txpulse+deflate": ["--deflate"]},
        )
        summary = deflate["summary"]
        n = self.s.deflate_connections
        memory: dict[str, Any] = {}
        for kind, flag in (("txpulse", False), ("txpulse+deflate", True)):
            result = self.once(
                f"deflate memory {kind}", self._idle_once, "txpulse", n, idle_messages=1, deflate=flag, cpu_window=False
            )
            if result is None:
                continue
            memory[kind] = result
            log(
                f"  deflate memory {kind:<16} {result['bytes_per_connection'] or 0:>8,} B/conn"
                f" ({n:,} connections that each echoed one 32 B message)"
                f"  {result['handshakes_per_s']:,.0f} handshakes/s"
            )
            if kind in summary:
                summary[kind]["bytes_per_connection"] = result["bytes_per_connection"]
                summary[kind]["handshakes_per_s"] = result["handshakes_per_s"]
        deflate["params"] |= {"memory_connections": n, "memory_idle_messages": 1}
        deflate["memory_runs"] = memory

    def profile(self, scenario: str) -> None:
        """
        One more txpulse run of C{scenario} under py-spy (not part of the
        medians: py-spy slows the server down), with a longer window.
        """
        stacks = self.output / f"profile-{scenario}-txpulse.txt"
        params = replace(self.params(scenario), duration=max(self.s.duration, 3.0))
        args: list[str] = []
        extra: list[str] = []
        if scenario == "fanout":
            args, extra = ["--app", "pubsub"], ["--mode", "fanout", "--bursts", "0"]
        elif scenario == "echo64k":
            params = replace(params, warmup=Params().warmup)  # the generator's default warm-up, as ever
        log(f"\n== profile: txpulse, {scenario}, py-spy")
        quiet(self.s.quiet_wait)
        result = measure(
            "txpulse", params, self.server_prefix, self.loadgen_prefix, self.server_core, stacks, args, extra
        )
        profile = profile_summary(stacks) | {
            "scenario": scenario,
            "stacks": str(stacks.relative_to(ROOT) if stacks.is_relative_to(ROOT) else stacks),
            "messages_per_s_while_profiled": result["messages_per_s"],
        }
        log(f"  {profile['samples']} samples, {result['messages_per_s']:,.0f}/s while sampled")
        log("  self time:")
        for percent, name in profile["self"][:12]:
            log(f"    {percent:5.1f}%  {name}")
        log("  txpulse, inclusive:")
        for percent, name in profile["txpulse_inclusive"][:10]:
            log(f"    {percent:5.1f}%  {name}")
        self.results.setdefault("profiles", {})[scenario] = profile


# -- report ------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _pct1(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def _ms(value: float | None) -> str:
    return f"{_num(value, ',.1f')} ms"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


#: A column of a report table: its header, and its cell from a server's
#: summary and the whole scenario's (for ratios).
Column = tuple[str, Callable[[dict[str, Any], dict[str, Any]], str]]


def _cell(header: str, key: str, show: Callable[[Any], str] = _num) -> Column:
    return header, lambda s, summary: show(s.get(key))


def _spread(key: str) -> Column:
    return "min .. max", lambda s, summary: f"{_num(s.get(f'{key}_min'))} .. {_num(s.get(f'{key}_max'))}"


def _versus(key: str, prefix: str = "") -> list[Column]:
    """
    C{key} as a ratio to Twisted's and to picows' figure.
    """
    return [
        (f"{prefix}vs {base}", lambda s, summary, base=base: _ratio(s.get(key), summary.get(base, {}).get(key)))
        for base in ("twisted", "picows")
    ]


#: The report: a table per scenario (when it ran), in this order: its title
#: (formatted with the scenario's params), the figure a server needs to have
#: a row, and the columns after the server's name. Rows are in the order the
#: servers were given.
TABLES: list[tuple[str, str, str, list[Column]]] = [
    (
        "echo32",
        "Echo, 32 B messages (64 connections x 32 in flight)",
        "messages_per_s",
        [
            _cell("msg/s", "messages_per_s"),
            _spread("messages_per_s"),
            *_versus("messages_per_s"),
            _cell("server core", "server_core_percent", _pct),
            _cell("loadgen CPU", "loadgen_cpu_percent", _pct),
        ],
    ),
    (
        "twogen",
        "Two generators instead of one (32 B echo)",
        "messages_per_s",
        [
            _cell("one generator msg/s", "one_generator_messages_per_s"),
            _cell("two generators msg/s", "messages_per_s"),
            _cell("two / one", "two_over_one", _times),
            _cell("loadgen CPU (both)", "loadgen_cpu_percent", _pct),
        ],
    ),
    (
        "latency",
        "Latency at {rate:,.0f} msg/s (64 connections, 32 B), round trip",
        "p50_us",
        [
            _cell("p50 us", "p50_us"),
            _cell("p90 us", "p90_us"),
            _cell("p99 us", "p99_us"),
            _cell("p99.9 us", "p999_us"),
            *_versus("p99_us", "p99 "),
            _cell("server CPU", "server_cpu_percent", _pct),
            _cell("loadgen CPU", "loadgen_cpu_percent", _pct),
        ],
    ),
    (
        "echo64k",
        "Echo, 64 KiB binary messages (64 connections x 4 in flight)",
        "payload_mb_per_s",
        [
            _cell("MB/s", "payload_mb_per_s"),
            _spread("payload_mb_per_s"),
            *_versus("payload_mb_per_s"),
            _cell("server core", "server_core_percent", _pct),
            _cell("loadgen CPU", "loadgen_cpu_percent", _pct),
        ],
    ),
    (
        "idle",
        "{connections:,} idle connections, heartbeat every {heartbeat:g} s",
        "handshakes_per_s",
        [
            _cell("handshakes/s", "handshakes_per_s"),
            _cell("open", "connections_open"),
            _cell("bytes/conn", "bytes_per_connection"),
            *_versus("bytes_per_connection"),
            _cell("bytes/conn at open", "bytes_per_connection_at_open"),
            _cell("heartbeat CPU", "heartbeat_cpu_percent", _pct1),
            _cell("pings in window", "pings_in_window"),
        ],
    ),
    (
        "fanout",
        "Fan-out: 1 publisher, {connections:,} subscribers ({inflight} publishes in flight; bursts of {burst})",
        "deliveries_per_s",
        [
            _cell("deliveries/s", "deliveries_per_s"),
            *_versus("deliveries_per_s"),
            _cell("first delivery of a burst", "first_delivery_ms", _ms),
            _cell("whole burst delivered", "burst_all_delivered_ms", _ms),
            _cell("server core", "server_core_percent", _pct),
            _cell("loadgen CPU", "loadgen_cpu_percent", _pct),
        ],
    ),
    (
        "loopfan",
        "Fan-out by a plain loop of sends: 1 publisher, {connections:,} subscribers ({inflight} in flight; bursts of {burst})",
        "deliveries_per_s",
        [
            _cell("deliveries/s", "deliveries_per_s"),
            *_versus("deliveries_per_s"),
            _cell("burst deliveries/s", "burst_deliveries_per_s"),
            _cell("first delivery of a burst", "first_delivery_ms", _ms),
            _cell("whole burst delivered", "burst_all_delivered_ms", _ms),
            _cell("server core", "server_core_percent", _pct),
        ],
    ),
    (
        "deflate",
        (
            "permessage-deflate (txpulse): echo 32 B, and memory of {memory_connections:,} connections "
            "that each echoed one message"
        ),
        "messages_per_s",
        [
            _cell("msg/s", "messages_per_s"),
            _cell("bytes/conn", "bytes_per_connection"),
            _cell("handshakes/s", "handshakes_per_s"),
            _cell("loadgen CPU", "loadgen_cpu_percent", _pct),
        ],
    ),
]


def tables(results: dict[str, Any]) -> str:
    """
    The report: one table per scenario (L{TABLES}), Markdown-compatible.
    """
    lines: list[str] = []
    for scenario, title, figure, columns in TABLES:
        if scenario not in results:
            continue
        summary = results[scenario]["summary"]
        header = ["server", *(name for name, _ in columns)]
        # a summary lists the servers in the order they were measured (as given)
        rows = [
            [kind, *(cell(s, summary) for _, cell in columns)]
            for kind, s in summary.items()
            if s.get(figure) is not None
        ]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        lines.append(f"\n### {title.format(**results[scenario]['params'])}\n")
        lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)) + " |")
        lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in rows:
            lines.append(
                "| "
                + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False)))
                + " |"
            )
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """
    Issue 7's targets, each with the figures and whether it is met.
    """
    out: list[dict[str, Any]] = []

    def get(scenario: str, kind: str, key: str) -> Any:
        return results.get(scenario, {}).get("summary", {}).get(kind, {}).get(key)

    def add(name: str, met: bool | None, detail: str) -> None:
        out.append({"target": name, "met": met, "detail": detail})

    t = get("echo32", "txpulse", "messages_per_s")
    tw, pi = get("echo32", "twisted", "messages_per_s"), get("echo32", "picows", "messages_per_s")
    if t and tw:
        add(f"echo 32 B >= {TARGET_ECHO_VS_TWISTED:g}x Twisted native", t / tw >= TARGET_ECHO_VS_TWISTED,
            f"{t:,.0f} vs {tw:,.0f} msg/s = {t / tw:.2f}x")  # fmt: skip
    if t and pi:
        add(f"echo 32 B >= {TARGET_ECHO_VS_PICOWS:g}x picows", t / pi >= TARGET_ECHO_VS_PICOWS,
            f"{t:,.0f} vs {pi:,.0f} msg/s = {t / pi:.2f}x (needs {TARGET_ECHO_VS_PICOWS * pi:,.0f})")  # fmt: skip
    t, ai = get("echo64k", "txpulse", "payload_mb_per_s"), get("echo64k", "aiohttp", "payload_mb_per_s")
    if t and ai:
        add("echo 64 KiB >= aiohttp", t >= ai, f"{t:,.0f} vs {ai:,.0f} MB/s = {t / ai:.2f}x")
    idle = results.get("idle", {}).get("summary", {})
    if "txpulse" in idle:
        mine = idle["txpulse"]["bytes_per_connection"]
        others = {
            k: v["bytes_per_connection"]
            for k, v in idle.items()
            if k != "txpulse" and k not in BASELINES and v["bytes_per_connection"]
        }
        lowest = min(others.items(), key=lambda kv: kv[1]) if others else None
        met = mine is not None and mine < TARGET_IDLE_BYTES and all(mine < v for v in others.values())
        add("memory per idle connection < 8 kB and below every peer", met,
            f"txpulse {mine:,} B" + (f"; lowest peer {lowest[0]} {lowest[1]:,} B" if lowest else ""))  # fmt: skip
        cpu = idle["txpulse"]["heartbeat_cpu_percent"]
        n = results["idle"]["params"]["connections"]
        h = results["idle"]["params"]["heartbeat"]
        if cpu is not None:
            add(f"heartbeat CPU < {TARGET_HEARTBEAT_CPU:g}% of a core at {n:,} idle", cpu < TARGET_HEARTBEAT_CPU,
                f"{cpu:.1f}% with a ping every {h:g} s of silence ({idle['txpulse']['pings_in_window']:,.0f} pings "
                "in the window)")  # fmt: skip
    fan = results.get("fanout", {}).get("summary", {})
    if "txpulse" in fan:
        mine = fan["txpulse"]["deliveries_per_s"]
        others = {k: v["deliveries_per_s"] for k, v in fan.items() if k != "txpulse" and k not in BASELINES}
        if others:
            best = max(others.items(), key=lambda kv: kv[1])
            add(f"fan-out >= {TARGET_FANOUT_VS_BEST:g}x the best peer", mine >= TARGET_FANOUT_VS_BEST * best[1],
                f"{mine:,.0f} vs {best[0]} {best[1]:,.0f} deliveries/s = {mine / best[1]:.2f}x")  # fmt: skip
        first = fan["txpulse"].get("first_delivery_ms")
        if first is not None:
            add(f"fan-out: first subscriber gets the first message at once (< {TARGET_FIRST_DELIVERY_MS:g} ms)",
                first < TARGET_FIRST_DELIVERY_MS,
                f"{first:,.1f} ms (whole burst {fan['txpulse']['burst_all_delivered_ms']:,.1f} ms)")  # fmt: skip
    loop = results.get("loopfan", {}).get("summary", {})
    if "txpulse" in loop and "twisted" in loop:
        for key, what in (("burst_deliveries_per_s", "bursts"), ("deliveries_per_s", "32 in flight")):
            mine, theirs = loop["txpulse"][key], loop["twisted"][key]
            add(f"plain send loop fan-out ({what}) >= {TARGET_LOOP_VS_TWISTED:g}x Twisted native",
                mine >= TARGET_LOOP_VS_TWISTED * theirs,
                f"{mine:,.0f} vs {theirs:,.0f} deliveries/s = {mine / theirs:.2f}x")  # fmt: skip
        first = loop["txpulse"].get("first_delivery_ms")
        if first is not None:
            add(f"plain send loop: first delivery of a burst <= {TARGET_LOOP_FIRST_MS:g} ms", first <= TARGET_LOOP_FIRST_MS,
                f"{first:,.2f} ms (Twisted native {loop['twisted'].get('first_delivery_ms') or 0:,.1f} ms)")  # fmt: skip
    return out


def chart(results: dict[str, Any], kinds: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, str, str, bool]] = [
        ("echo32", "messages_per_s", "echo 32 B: messages/s", False),
        ("echo64k", "payload_mb_per_s", "echo 64 KiB: MB/s", False),
        ("latency", "p99_us", "latency: p99 round trip (us), lower is better", False),
        ("idle", "bytes_per_connection", "bytes per idle connection, lower is better", False),
        ("idle", "handshakes_per_s", "handshakes/s (opening 10k)", False),
        ("idle", "heartbeat_cpu_percent", "heartbeat CPU % at 10k idle, lower is better", False),
        ("fanout", "deliveries_per_s", "fan-out to 1,000: deliveries/s", False),
        ("fanout", "first_delivery_ms", "fan-out: first delivery of a burst (ms, log)", True),
        ("loopfan", "burst_deliveries_per_s", "plain send loop fan-out: deliveries/s in bursts", False),
        ("deflate", "messages_per_s", "txpulse deflate off/on: msg/s", False),
    ]
    panels = [p for p in panels if p[0] in results]
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.6 * rows), squeeze=False)
    colors = {
        "txpulse": "#d62728",
        "txpulse+deflate": "#ff9896",
        "twisted": "#7f7f7f",
        "autobahn": "#1f77b4",
        "websockets": "#2ca02c",
        "aiohttp": "#9467bd",
        "picows": "#ff7f0e",
    }
    for ax, (scenario, key, label, logscale) in zip(axes.flat, panels, strict=False):
        summary = results[scenario]["summary"]
        names = [
            k
            for k in (kinds if scenario != "deflate" else list(summary))
            if k in summary and summary[k].get(key) is not None
        ]
        values = [summary[k][key] for k in names]
        bars = ax.bar(names, values, color=[colors.get(k, "#333333") for k in names])
        if logscale:
            ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.tick_params(axis="y", labelsize=8)
        for bar, value in zip(bars, values, strict=False):
            text = f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
            ax.annotate(
                text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7
            )
        if scenario == "deflate" and key == "messages_per_s":
            for bar, name in zip(bars, names, strict=False):
                memory = summary[name].get("bytes_per_connection")
                if memory:
                    ax.annotate(f"{memory / 1024:,.1f} KiB/conn", (bar.get_x() + bar.get_width() / 2, bar.get_height() / 2),
                                ha="center", va="center", fontsize=7, color="white")  # fmt: skip
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    all_scenarios = ["echo32", "twogen", "latency", "echo64k", "idle", "fanout", "loopfan", "deflate"]
    parser.add_argument(
        "--scenarios", default=",".join(all_scenarios), help="comma-separated, from: " + ", ".join(all_scenarios)
    )
    parser.add_argument("--servers", default=",".join(KINDS), help="comma-separated, from: " + ", ".join(KINDS))
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run (~25 s with two servers): 1 run, short windows, small N"
    )
    parser.add_argument("--runs", type=int, help="runs per measurement (default 3; the median is reported)")
    parser.add_argument("--duration", type=float, help="seconds measured per run (default 2)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per run (default 1)")
    parser.add_argument("--heartbeat", type=float, help="idle scenario: ping interval, seconds (default 10)")
    parser.add_argument("--idle-connections", type=int, help="idle scenario: connections (default 10,000)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument(
        "--profile",
        choices=("echo32", "echo64k", "fanout"),
        action="append",
        default=[],
        help="after the suite, profile txpulse under this scenario with py-spy (repeatable)",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="directory for summary.json/.png/.md (default bench/results)"
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run txpulse as of git revision REV (checked out in a temporary worktree), as server "
        "txpulse@REV beside txpulse: a change's before and after in one sitting",
    )
    args = parser.parse_args(argv)

    settings = QUICK if args.quick else Settings()
    overrides = {
        "runs": args.runs,
        "duration": args.duration,
        "warmup": args.warmup,
        "heartbeat": args.heartbeat,
        "idle_connections": args.idle_connections,
    }
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(all_scenarios)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    wanted = [k.strip() for k in args.servers.split(",") if k.strip()]
    if set(wanted) - set(KINDS):
        parser.error(f"unknown servers: {', '.join(sorted(set(wanted) - set(KINDS)))}")
    if args.baseline:
        try:
            label = addBaseline(args.baseline)
        except subprocess.CalledProcessError as error:
            parser.error(f"--baseline {args.baseline}: git could not check it out ({error.returncode})")
        wanted.insert(wanted.index("txpulse") + 1 if "txpulse" in wanted else 0, label)
    output = args.output or (RESULTS / "quick" if args.quick else RESULTS)

    started = time.monotonic()
    build_loadgen()
    digest = source_digest()
    skipped = {k: why for k in wanted if (why := available(k))}
    kinds = [k for k in wanted if k not in skipped]
    bench = Bench(settings, kinds, not args.no_pin)
    bench.output = output
    output.mkdir(parents=True, exist_ok=True)
    info = machine() | {"packages": versions(), "txpulse_src_digest": digest, "baseline": args.baseline}
    log(
        f"txpulse benchmark suite: {', '.join(kinds)}; {info.get('cpus')} cores, {info.get('cpu_model', '?')}, "
        f"Python {info['python']}; server on core 0, generator on core 1"
        + ("" if bench.server_prefix else " (NOT pinned)")
    )
    for why in skipped.values():
        bench.note(f"skipped {why}")
    if not kinds:
        return 1

    for scenario in scenarios:
        begun = time.monotonic()
        getattr(bench, scenario)()
        bench.timings[scenario] = round(time.monotonic() - begun, 1)
        log(f"  ({scenario}: {bench.timings[scenario]:.0f} s)")
    for scenario in args.profile:
        try:
            bench.profile(scenario)
        except Exception as failure:
            bench.note(f"profile {scenario}: failed: {failure}")

    results = bench.results
    report = tables(results)
    goals = targets(results)
    elapsed = time.monotonic() - started
    if bench.retries:
        bench.note(
            f"{bench.retries} measurements were repeated because other processes used (or the hypervisor stole) over {NOISY:.0f}% of a core "
            f"during them ({bench.retry_spent:.0f} s); the least disturbed attempt counts"
        )
    if source_digest() != digest:
        bench.note("txpulse's sources changed during the run: the runs may have measured different code")
    loadgen_max = max(
        [s.get("loadgen_cpu_percent_max") or s.get("loadgen_cpu_percent") or 0
         for sc in results.values() if isinstance(sc, dict) and "summary" in sc
         for s in sc["summary"].values()] or [0]
    )  # fmt: skip

    log("\n" + "=" * 100)
    log(report)
    log("\n### Targets (issue 7)\n")
    for goal in goals:
        mark = {True: "MET    ", False: "MISSED ", None: "?      "}[goal["met"]]
        log(f"- {mark} {goal['target']}: {goal['detail']}")
    log(f"\nThe load generator's CPU stayed at or under {loadgen_max:.0f}% of its core in every scenario.")
    if bench.notes:
        log("\nNotes:")
        for note in bench.notes:
            log(f"- {note}")
    log(f"\nwall time: {elapsed:.0f} s")

    output.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "txpulse suite (issue 7)",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": asdict(settings) | {"pinned": bool(bench.server_prefix), "server_cpu": 0, "loadgen_cpu": 1},
        "machine": info,
        "servers": kinds,
        "skipped": skipped,
        "targets": goals,
        "notes": bench.notes,
        "wall_time_s": round(elapsed, 1),
        "scenario_times_s": bench.timings,
        "loadgen_cpu_percent_max": loadgen_max,
        "results": results,
    }
    (output / "summary.json").write_text(json.dumps(document, indent=1, default=str) + "\n")
    title = (
        f"txpulse vs peers - {info.get('cpus')} cores ({info.get('cpu_model', '?')}), Python {info['python']}, "
        f"server pinned to 1 core, C load generator on the other - {document['date'][:10]}"
    )
    if any(k in results for k in ("echo32", "echo64k", "latency", "idle", "fanout", "loopfan", "deflate")):
        chart(results, kinds, output / "summary.png", title)
    markdown = [
        "# Benchmark results",
        "",
        f"Generated by `bench/run.py` on {document['date']} in {elapsed:.0f} s.",
        "",
        f"Machine: {info.get('cpus')} cores, {info.get('cpu_model', '?')}, {info.get('platform')}; "
        f"Python {info['python']}; " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()) + "; "
        f"txpulse {info.get('txpulse_git', '?')} (src digest {digest}).",
        "",
        f"Each server runs alone, pinned to core 0; the C load generator is pinned to core 1. Figures are medians "
        f"of {settings.runs} runs (idle: one run per server). Ratios are taken within this run only.",
        report,
        "",
        "### Targets (issue 7)",
        "",
        *[f"- **{'met' if g['met'] else 'missed'}**: {g['target']}: {g['detail']}" for g in goals],
        "",
        f"The load generator's CPU stayed at or under {loadgen_max:.0f}% of its core in every scenario.",
        "",
        "### Notes",
        "",
        *[f"- {n}" for n in bench.notes],
        "",
        "![summary](summary.png)",
        "",
    ]
    (output / "summary.md").write_text("\n".join(markdown))
    shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
    log(f"wrote {shown}/summary.json, summary.png, summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
