"""
Issue #12, items 5, 6 and 10, against the real plugin (C{twistd -n
txpulse} in a subprocess, over loopback): PBES2 tokens, a brute force of
Bearer keys, and a close-code label flood, each while a well-behaved
L{Bystander} on C{/echo} must see no disruption.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from txpulse.server.auth import generateKeySet

from ..support.keepalive import get, timed, upgrade
from ..support.net import free_port
from ..support.processes import TwistdServer
from ..support.tokens import pbes2_token
from ..support.waits import within
from .conftest import Bystander


@pytest.fixture
def credentials(tmp_path: Path) -> tuple[Path, Path]:
    """
    An API key file (C{k-alice}) and a JWK set.
    """
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"k-alice": "alice"}))
    jwk = tmp_path / "jwk.json"
    jwk.write_text(generateKeySet())
    return keys, jwk


def twistd(
    tmp_path: Path, credentials: tuple[Path, Path], *options: str, morePorts: Sequence[int] = ()
) -> TwistdServer:
    keys, jwk = credentials
    return TwistdServer(
        tmp_path / "twistd.log",
        "--auth-keys", str(keys), "--jwk", str(jwk), "--protect", "/pubsub", "--ping-interval", "0", *options,
        morePorts=morePorts,
    )  # fmt: skip


@pytest.fixture
def bystander_of() -> Iterator[Any]:
    """
    C{bystander_of(port)}: a connected L{Bystander} on C{/echo}, aborted at
    teardown.
    """
    made: list[Bystander] = []

    async def connect(port: int) -> Bystander:
        bystander = Bystander(f"ws://127.0.0.1:{port}/echo")
        made.append(bystander)
        await bystander.connect()
        await bystander.exchange()
        return bystander

    yield connect
    for bystander in made:
        bystander.abort()


@pytest_twisted.ensureDeferred
async def test_pbes2_tokens_are_refused_cheaply(
    tmp_path: Path, credentials: tuple[Path, Path], bystander_of: Any
) -> None:
    """
    A hundred PBES2 tokens (p2c 16,384) against C{/pubsub}: each refused
    with 401 about as fast as a garbage token (before: ~7 ms of PBKDF2
    each, 132/s saturate the server); the bystander is not disturbed.
    (The failure limit is raised so every attempt reaches the verifier.)
    """
    with twistd(tmp_path, credentials, "--auth-failures", "100000/1") as server:
        bystander = await bystander_of(server.port)
        hostile = [upgrade(f"/pubsub?ws_token={pbes2_token()}") for _ in range(100)]
        garbage = [upgrade("/pubsub?ws_token=" + "x" * len(pbes2_token())) for _ in range(100)]
        answers, perHostile = await within(deferToThread(timed, server.port, hostile), 30)
        assert {a.status for a in answers} == {401}
        _, perGarbage = await within(deferToThread(timed, server.port, garbage), 30)
        await bystander.exchange()
        await bystander.close()
    assert perHostile < max(2 * perGarbage, 0.002), f"{perHostile * 1e3:.2f} ms vs {perGarbage * 1e3:.2f} ms"


@pytest_twisted.ensureDeferred
async def test_key_brute_force_is_limited_and_logged_in_aggregate(
    tmp_path: Path, credentials: tuple[Path, Path], bystander_of: Any
) -> None:
    """
    Four hundred wrong Bearer keys from one address: the first 10 get 401,
    the rest 429 with C{Retry-After} (the right key too, unchecked); the
    log holds one line about the failures, not one (or three) per attempt;
    the bystander is not disturbed.
    """
    with twistd(tmp_path, credentials) as server:
        bystander = await bystander_of(server.port)
        attempts = [upgrade("/pubsub", Authorization=f"Bearer guess-{n}") for n in range(400)]
        answers, _ = await within(deferToThread(timed, server.port, attempts), 30)
        statuses = [a.status for a in answers]
        assert statuses[:10] == [401] * 10 and statuses[10:] == [429] * 390
        assert all(1 <= int(a.headers["retry-after"]) <= 6 for a in answers[10:])
        (right,), _ = await within(
            deferToThread(timed, server.port, [upgrade("/pubsub", Authorization="Bearer k-alice")])
        )
        assert right.status == 429
        await bystander.exchange()
        await bystander.close()
    log = server.output()
    assert len([line for line in log.splitlines() if "Authentication failed for 127.0.0.1" in line]) == 1
    assert "unknown API key" not in log.replace("Authentication failed for 127.0.0.1: unknown API key", "")
    assert "handshake refused" not in log
    assert "guess-" not in log


def close_with(port: int, code: int) -> None:
    """
    Open C{/echo} on a raw socket, close with C{code}, wait for the echo.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(upgrade("/echo"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        mask = os.urandom(4)
        payload = code.to_bytes(2, "big")
        sock.sendall(bytes((0x88, 0x80 | 2)) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        while sock.recv(4096):
            pass


def fetch(url: str, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


@pytest_twisted.ensureDeferred
async def test_close_code_flood_keeps_metrics_small_on_their_own_listener(
    tmp_path: Path, credentials: tuple[Path, Path], bystander_of: Any
) -> None:
    """
    With C{--metrics-listen}, C{/metrics} is gone from the main listener
    and served on its own. Four hundred connections closing with codes
    3000-4999 (before: one label each, 1.8 KB grew to 104 KB at 2,000) add
    two labels, C{3xxx} and C{4xxx}; the bystander is not disturbed.
    """
    metricsPort = free_port()
    with twistd(tmp_path, credentials, "--metrics-listen", f"tcp:{metricsPort}:interface=127.0.0.1",
                morePorts=[metricsPort]) as server:  # fmt: skip
        bystander = await bystander_of(server.port)
        assert fetch(f"http://127.0.0.1:{server.port}/metrics")[0] == 404
        status, before = fetch(f"http://127.0.0.1:{metricsPort}/metrics")
        assert status == 200

        def flood() -> None:
            for n in range(400):
                close_with(server.port, 3000 + n * 5)

        await within(deferToThread(flood), 60)
        await bystander.exchange()
        _, after = fetch(f"http://127.0.0.1:{metricsPort}/metrics")
        await bystander.close()
    codes = {
        line.split('code="')[1].split('"')[0] for line in after.splitlines() if line.startswith("txpulse_closes_total")
    }
    assert codes <= {"1000", "3xxx", "4xxx"} and {"3xxx", "4xxx"} <= codes
    assert 'txpulse_closes_total{code="3xxx",path="/echo"} 200.0' in after
    assert len(after) < len(before) + 1024


@pytest_twisted.ensureDeferred
async def test_metrics_behind_the_api_keys(tmp_path: Path, credentials: tuple[Path, Path]) -> None:
    """
    C{--protect /metrics}: 401 with a Bearer challenge without a key, the
    metrics with one.
    """
    with twistd(tmp_path, credentials, "--protect", "/metrics") as server:
        url = f"http://127.0.0.1:{server.port}/metrics"
        assert (await deferToThread(fetch, url))[0] == 401
        status, text = await deferToThread(fetch, url, Authorization="Bearer k-alice")
        assert status == 200 and "txpulse_open_connections" in text
        (answer,), _ = await deferToThread(timed, server.port, [get("/metrics")])
        assert answer.headers.get("www-authenticate", "").startswith("Bearer")
