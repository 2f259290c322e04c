"""
The soak run (issue 7): as many idle connections with heartbeats as one
server process can hold, for minutes, with the server's memory watched.

    .venv/bin/python bench/soak.py                                # 19,000 connections, 5 minutes
    .venv/bin/python bench/soak.py --connections 5000 --hold 60   # a shorter look

The server is what users run, C{twistd -n txpulse} (its C{/echo}), with
keepalive pings every C{--ping-interval} seconds of silence, pinned to one
core; the C load generator (bench/loadgen.c, idle mode) opens the
connections 64 at a time, answers every ping, and holds them. Every
C{--sample} seconds the server's RSS and CPU are recorded. The run passes
when every connection stays open to the end and RSS is flat over the hold:
it grows by less than C{--max-growth} percent from the first sample after
all connections are open (heartbeats have not run yet) to the last.

Both processes need an open-files limit above the connection count: the
soft limit is raised to the hard one for both (the hard limit on the
machine this was written for is 20,000, hence 19,000 connections).

Not part of C{make bench} or CI: it takes the whole machine for minutes.
Writes bench/results/soak.json and soak.md (or to --output).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from echo import RESULTS, build_loadgen, cpu_seconds, free_port, machine, pinning  # noqa: E402

TWISTD = Path(sys.executable).with_name("twistd")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_open_files_limit() -> None:
    """
    Raise this process's soft open-files limit to the hard limit (inherited
    by the children started after it).
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_for_port(port: int, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"twistd exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("twistd did not start listening")


def soak(args: argparse.Namespace) -> dict[str, Any]:
    raise_open_files_limit()
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if args.connections + 64 > limit:
        raise SystemExit(f"error: {args.connections:,} connections need an open-files limit above {limit:,}")
    loadgen = build_loadgen()
    server_prefix, loadgen_prefix = pinning(0, 1, enabled=not args.no_pin)
    port = free_port()
    log = open(args.output / "soak-server.log", "w")
    server = subprocess.Popen(
        [
            *server_prefix,
            str(TWISTD),
            "--pidfile=",
            "-n",
            "txpulse",
            "--listen",
            f"tcp:{port}:interface=127.0.0.1:backlog=1024",
            "--ping-interval",
            str(args.ping_interval),
            # Every connection comes from 127.0.0.1, and there are more than
            # the default total cap leaves room for: no connection caps.
            "--max-connections",
            "0",
            "--max-connections-per-address",
            "0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    samples: list[dict[str, Any]] = []
    try:
        wait_for_port(port, server)
        time.sleep(0.5)
        rss_before = rss_kib(server.pid)
        started = time.monotonic()
        command = [
            *loadgen_prefix,
            str(loadgen),
            "--port", str(port),
            "--path", "/echo",
            "--mode", "idle",
            "--connections", str(args.connections),
            "--concurrency", "64",
            "--hold", str(args.hold),
            "--connect-timeout", "300",
            "--marks",
        ]  # fmt: skip
        generator = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert generator.stdout is not None and generator.stderr is not None
        opened_after = None
        cpu_last, t_last = cpu_seconds(server.pid), time.monotonic()
        messages = []
        for line in generator.stderr:
            line = line.rstrip("\n")
            if line.startswith("OPEN "):
                opened_after = time.monotonic() - started
                print(f"all {args.connections:,} open after {opened_after:.1f} s", file=sys.stderr)
                cpu_last, t_last = cpu_seconds(server.pid), time.monotonic()
            elif line.startswith("TICK "):
                _, second, pings, still_open = line.split()
                k = int(second)
                if k % args.sample == 0 or k == 1:
                    now, cpu = time.monotonic(), cpu_seconds(server.pid)
                    sample = {
                        "t": k,
                        "rss_kib": rss_kib(server.pid),
                        "open": int(still_open),
                        "pings": int(pings),
                        "server_cpu_percent": round((cpu - cpu_last) / (now - t_last) * 100, 2),
                    }
                    cpu_last, t_last = cpu, now
                    samples.append(sample)
                    print(
                        f"  t={k:>4} s  RSS {sample['rss_kib'] / 1024:7.1f} MiB  open {sample['open']:,}"
                        f"  pings answered {sample['pings']:,}  server CPU {sample['server_cpu_percent']:.1f}%",
                        file=sys.stderr,
                    )
            else:
                messages.append(line)
        out = generator.stdout.read()
        if generator.wait() != 0 or not out.strip():
            raise RuntimeError(f"the load generator failed (exit {generator.returncode}):\n" + "\n".join(messages))
        final: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        if server.poll() is not None:
            raise RuntimeError(f"the server died (exit {server.returncode}); see soak-server.log")
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    if not samples:
        raise RuntimeError("no samples: the connections never all opened:\n" + "\n".join(messages))
    first, last = samples[0], samples[-1]
    n = args.connections
    growth = (last["rss_kib"] - first["rss_kib"]) / first["rss_kib"] * 100
    steady = [s["server_cpu_percent"] for s in samples[1:]] or [first["server_cpu_percent"]]
    result = {
        "params": {
            "connections": n,
            "hold_s": args.hold,
            "ping_interval_s": args.ping_interval,
            "server": "twistd -n txpulse (/echo)",
        },
        "machine": machine(),
        "opened_after_s": round(opened_after or 0, 1),
        "handshakes_per_s": final.get("handshakes_per_s"),
        "rss_before_kib": rss_before,
        "rss_first_kib": first["rss_kib"],
        "rss_last_kib": last["rss_kib"],
        "rss_max_kib": max(s["rss_kib"] for s in samples),
        "rss_growth_percent": round(growth, 2),
        "bytes_per_connection": round((last["rss_kib"] - rss_before) * 1024 / n),
        "open_at_end": last["open"],
        "pings_answered": last["pings"],
        "server_cpu_percent_mean": round(sum(steady) / len(steady), 2),
        "loadgen": final,
        "loadgen_messages": messages,
        "samples": samples,
    }
    result["passed"] = last["open"] == n and growth < args.max_growth
    return result


def report(result: dict[str, Any]) -> str:
    p = result["params"]
    m = result["machine"]
    verdict = "PASSED" if result["passed"] else "FAILED"
    lines = [
        f"### Soak: {p['connections']:,} idle connections with heartbeats, held {p['hold_s']} s ({verdict})",
        "",
        f"{p['server']}, keepalive ping after {p['ping_interval_s']} s of silence; machine: "
        f"{m.get('cpu_model', '?')}, {m.get('cpus', '?')} CPUs, Python {m.get('python', '?')}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| all open after | {result['opened_after_s']} s ({result['handshakes_per_s'] or 0:,.0f} handshakes/s) |",
        f"| open at the end | {result['open_at_end']:,} of {p['connections']:,} |",
        f"| pings answered during the hold | {result['pings_answered']:,} |",
        f"| server RSS: before, first sample, last, max | {result['rss_before_kib'] / 1024:.1f} / "
        f"{result['rss_first_kib'] / 1024:.1f} / {result['rss_last_kib'] / 1024:.1f} / "
        f"{result['rss_max_kib'] / 1024:.1f} MiB |",
        f"| RSS growth over the hold | {result['rss_growth_percent']:+.2f}% |",
        f"| memory per connection | {result['bytes_per_connection']:,} B |",
        f"| server CPU, mean over the hold | {result['server_cpu_percent_mean']:.1f}% of a core |",
        "",
        "| t (s) | RSS (MiB) | open | pings answered | server CPU |",
        "|---|---|---|---|---|",
    ]
    for s in result["samples"]:
        lines.append(
            f"| {s['t']} | {s['rss_kib'] / 1024:.1f} | {s['open']:,} | {s['pings']:,} | {s['server_cpu_percent']:.1f}% |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=19_000)
    parser.add_argument("--hold", type=int, default=300, help="seconds to hold them (default 300)")
    parser.add_argument("--ping-interval", type=float, default=20.0)
    parser.add_argument("--sample", type=int, default=10, help="seconds between samples")
    parser.add_argument(
        "--max-growth", type=float, default=2.0, help="RSS growth over the hold that still counts as flat (%%)"
    )
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    try:
        result = soak(args)
    except (RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    (args.output / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result)
    (args.output / "soak.md").write_text(text)
    print(text)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
