"""
Tests for L{txpulse.server.ratelimit.FailureLimiter} (issue #12, item 6): failed
authentications limited per client address, refusals answered with 429 and
C{Retry-After} without checking the key, logs in aggregate; and how the
plugin's protected mounts, C{/@wstoken} and C{/metrics} share it. All on
a L{Clock}, in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.web.server import Site

from txpulse.plugin.metrics import ConnectionRegistry
from txpulse.plugin.tap import Options, buildRoot
from txpulse.server.auth import generateKeySet
from txpulse.server.ratelimit import FailureLimiter, clientKey

from ..support.http import Client
from ..support.logs import captured_logs
from ..support.requests import upgrade_request


def test_burst_then_refused_with_retry_after() -> None:
    """
    An address may fail C{burst} times; then it is refused with the whole
    seconds until a token is back (C{period / burst} per token), and may
    try once more when that time has passed.
    """
    clock = Clock()
    limiter = FailureLimiter(burst=3, period=30.0, clock=clock)
    for _ in range(3):
        assert limiter.retryAfter("10.0.0.1") is None
        limiter.failed("10.0.0.1", "unknown API key")
    assert limiter.retryAfter("10.0.0.1") == 10
    assert limiter.retryAfter("10.0.0.2") is None, "other addresses are not affected"
    clock.advance(9.5)
    assert limiter.retryAfter("10.0.0.1") == 1
    clock.advance(0.5)
    assert limiter.retryAfter("10.0.0.1") is None
    limiter.failed("10.0.0.1", "unknown API key")
    assert limiter.retryAfter("10.0.0.1") == 10


def test_table_of_addresses_is_bounded() -> None:
    """
    However many addresses fail, at most C{maxAddresses} buckets are kept,
    and the quiet, refilled ones are dropped first.
    """
    clock = Clock()
    limiter = FailureLimiter(burst=2, period=2.0, maxAddresses=100, clock=clock)
    for n in range(10_000):
        limiter.failed(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", "unknown API key")
        assert len(limiter) <= 100
    clock.advance(10)
    limiter.failed("192.0.2.1", "unknown API key")
    assert len(limiter) == 1, "refilled buckets are forgotten"


def test_client_key_groups_ipv6_by_64() -> None:
    """
    An IPv6 client is limited by its C{/64} (one host usually has all of
    it); IPv4-mapped addresses count as IPv4.
    """
    assert clientKey(IPv4Address("TCP", "192.0.2.7", 1)) == "192.0.2.7"
    a = clientKey(IPv6Address("TCP", "2001:db8:1:2::1", 1))
    b = clientKey(IPv6Address("TCP", "2001:db8:1:2:ffff::9", 1))
    assert a == b == "2001:db8:1:2::/64"
    assert clientKey(IPv6Address("TCP", "::ffff:192.0.2.7", 1)) == "192.0.2.7"


def test_failures_are_logged_in_aggregate() -> None:
    """
    A thousand failures and refusals from one address make two log lines:
    the first failure at once, then one summary when the interval ends; a
    second interval of attempts, one more summary.
    """
    clock = Clock()
    limiter = FailureLimiter(burst=10, period=60.0, logInterval=60.0, clock=clock)
    with captured_logs() as lines:
        for _ in range(1000):
            if limiter.retryAfter("10.0.0.1") is None:
                limiter.failed("10.0.0.1", "unknown API key")
        assert lines == ["Authentication failed for 10.0.0.1: unknown API key"]
        clock.advance(60)
        assert len(lines) == 2
        assert "10.0.0.1: 9 more failed attempt(s) and 990 refused (429)" in lines[1]
        assert "in the last 60s" in lines[1]
        for _ in range(500):
            if limiter.retryAfter("10.0.0.1") is None:
                limiter.failed("10.0.0.1", "unknown API key")
        clock.advance(60)
        assert len(lines) == 3 and "10 more failed attempt(s) and 490 refused" in lines[2]
        clock.advance(600)
        assert len(lines) == 3, "nothing pending, no timer, no line"


# -- the plugin ----------------------------------------------------------------------


@pytest.fixture
def plugin(tmp_path: Path) -> tuple[Site, Clock]:
    """
    The plugin's tree with C{/pubsub} and C{/metrics} protected, browser
    tokens on, 5 failures per 50 s allowed, on a L{Clock}.
    """
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"k-alice": "alice"}))
    jwk = tmp_path / "jwk.json"
    jwk.write_text(generateKeySet())
    options = Options()
    options.parseOptions(
        ["--auth-keys", str(keys), "--jwk", str(jwk), "--protect", "/pubsub", "--protect", "/metrics"]
        + ["--auth-failures", "5/50"]
    )
    clock = Clock()
    registry = ConnectionRegistry(clock=clock, logConnections=False)
    return Site(buildRoot(options, registry, clock), reactor=clock), clock


def status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def test_wrong_keys_get_429_without_checking_the_key(plugin: tuple[Site, Clock]) -> None:
    """
    After 5 wrong keys an address gets 429 with C{Retry-After} on every way
    in (upgrade, C{/@wstoken}, C{/metrics}), even with the right key; after
    C{Retry-After} seconds the right key works again. Attempts without any
    credentials count for nothing. The status line is always
    C{429 Too Many Requests}, never Twisted's C{429 Unknown Status}.
    """
    site, clock = plugin

    def upgrade(key: str) -> bytes:
        head, _ = Client(site).request(upgrade_request("/pubsub", Authorization=f"Bearer {key}"))
        return head

    for _ in range(20):
        assert status(Client(site).request(upgrade_request("/pubsub"))[0]) == 401
    for n in range(5):
        assert status(upgrade(f"wrong-{n}")) == 401
    refused = upgrade("wrong-5")
    assert status(refused) == 429 and b"Retry-After: 10" in refused
    assert refused.split(b"\r\n", 1)[0] == b"HTTP/1.1 429 Too Many Requests"
    assert status(upgrade("k-alice")) == 429, "the key is not even looked at"
    for request in (
        b"GET /@wstoken HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-alice\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-alice\r\n\r\n",
    ):
        head, _ = Client(site).request(request)
        assert status(head) == 429 and b"Retry-After: 10" in head
        # The phrase is set explicitly: Twisted's RESPONSES lacks 429 ("Unknown Status").
        assert head.split(b"\r\n", 1)[0] == b"HTTP/1.1 429 Too Many Requests"
    clock.advance(10)
    head, _ = Client(site).request(upgrade_request("/pubsub", Authorization="Bearer k-alice"))
    assert status(head) == 101


def test_wrong_tokens_count_as_failures(plugin: tuple[Site, Clock]) -> None:
    """
    Invalid browser tokens (C{?ws_token=}) and wrong keys on C{/@wstoken}
    draw on the same bucket as wrong keys on the mounts.
    """
    site, _ = plugin
    for n in range(3):
        head, _ = Client(site).request(upgrade_request(f"/pubsub?ws_token=bogus{n}"))
        assert status(head) == 401
    for n in range(2):
        head, _ = Client(site).request(b"GET /@wstoken HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer no%d\r\n\r\n" % n)
        assert status(head) == 401
    head, _ = Client(site).request(upgrade_request("/pubsub?ws_token=bogus"))
    assert status(head) == 429


def test_refusals_do_not_log_one_line_per_attempt(plugin: tuple[Site, Clock]) -> None:
    """
    Two hundred wrong keys leave one log line (the first failure), then one
    summary per interval: no per-attempt line from the accept hook or the
    resource's refusal log.
    """
    site, clock = plugin
    with captured_logs() as lines:
        for n in range(200):
            Client(site).request(upgrade_request("/pubsub", Authorization=f"Bearer wrong-{n}"))
        assert lines == ["Authentication failed for 192.168.1.1: unknown API key"]
        clock.advance(60)
    assert len(lines) == 2 and "4 more failed attempt(s) and 195 refused (429)" in lines[1]


def test_auth_failures_option_is_validated() -> None:
    """
    C{--auth-failures} takes FAILURES/SECONDS, both positive.
    """
    from twisted.python import usage

    for bad in ("10", "0/60", "10/0", "x/y", "-1/5"):
        with pytest.raises(usage.UsageError):
            Options().parseOptions(["--auth-failures", bad])
    options = Options()
    options.parseOptions(["--auth-failures", "3/7.5"])
    assert options["auth-failures"] == (3, 7.5)
