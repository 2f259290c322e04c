"""
The production shape, end to end on loopback: nginx running the shipped
C{deploy/nginx/txpulse.conf} in front of three C{twistd -n txpulse} nodes
sharing a Redis broker (L{tests.support.cluster}). WebSocket upgrades are
balanced over the nodes, pub/sub crosses them, the static site comes
through the same proxy, and with C{--trusted-proxy 127.0.0.1} the nodes log
the client's address from C{X-Forwarded-For} (and ignore the header from
anyone else).

Clients connect from C{127.0.0.2} (any 127/8 address is loopback on
Linux), so the address nginx forwards differs from nginx's own
(C{127.0.0.1}, the only trusted proxy).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from ..support.cluster import NGINX_CONF, Cluster, Nginx, nginxCommand, renderNginxConf

#: The clients' source address.
CLIENT = "127.0.0.2"
#: Seconds any one wait may take.
WAIT = 10.0


def ws(url: str, **options: Any) -> ClientConnection:
    """
    A C{websockets} client connection from L{CLIENT}, without keepalive
    pings of its own (the server's are answered).
    """
    client: ClientConnection = connect(
        url, open_timeout=WAIT, proxy=None, ping_interval=None, source_address=(CLIENT, 0), **options
    )
    return client


def settled(read: Any, expected: int) -> Any:
    """
    Poll C{read()} (a list of lists) until their lengths add up to
    C{expected} (node logs are written as they happen, but not instantly),
    then return it.
    """
    deadline = time.monotonic() + WAIT
    while True:
        value = read()
        if sum(map(len, value)) >= expected or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """
    Redis, three nodes trusting nginx (C{--trusted-proxy 127.0.0.1}) and
    nginx: started once for this module's tests.
    """
    with Cluster(tmp_path_factory.mktemp("cluster"), nodes=3) as running:
        yield running


def opened_since(cluster: Cluster, before: list[list[str]], path: str) -> list[list[str]]:
    """
    Per node, the peers of the C{path} WebSockets opened since C{before}
    (a L{Cluster.opened} of the same path).
    """
    return [peers[len(earlier) :] for peers, earlier in zip(cluster.opened(path), before, strict=True)]


def test_shipped_config_passes_nginx_test(tmp_path: Path) -> None:
    """
    The shipped file, unchanged, is accepted by C{nginx -t} in an C{http}
    block; rendered for a test only its C{listen} and upstream C{server}
    lines change, and it has what a WebSocket proxy needs.
    """
    shipped = NGINX_CONF.read_text()
    (tmp_path / "txpulse.conf").write_text(shipped)
    command = [*nginxCommand(tmp_path), "-t", "-q", "-g", f"pid {tmp_path}/nginx.pid;"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 0, result.stderr
    for needed in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $txpulse_connection;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header Host $http_host;",
        "proxy_buffering off;",
        "least_conn;",
    ):
        assert needed in shipped, needed
    rendered = renderNginxConf(shipped, 9000, [9001, 9002])
    changed = set(rendered.splitlines()) ^ set(shipped.splitlines())
    assert {line.strip() for line in changed} == {
        "listen 80;",
        "listen [::]:80;",
        "listen 127.0.0.1:9000;",
        *(f"server 127.0.0.1:{port} max_fails=0;" for port in (8081, 8082, 8083, 8084, 9001, 9002)),
    }


def test_upgrades_are_balanced_over_the_nodes(cluster: Cluster) -> None:
    """
    Six WebSockets held open through nginx land two on each node (nginx
    balances on open connections); each echoes. Every node logs the
    client's address as nginx forwarded it (C{127.0.0.2}, no port), not
    nginx's, and not what a client put in its own C{X-Forwarded-For}.
    """
    before = cluster.opened("/echo")
    with ExitStack() as stack:
        clients = []
        for index in range(6):
            # Half of them try to pass for someone else.
            headers = {"X-Forwarded-For": "203.0.113.9"} if index % 2 else None
            clients.append(stack.enter_context(ws(cluster.url("/echo"), additional_headers=headers)))
        for index, client in enumerate(clients):
            client.send(f"hello {index}")
            assert client.recv(timeout=WAIT) == f"hello {index}"
        opened = settled(lambda: opened_since(cluster, before, "/echo"), 6)
    assert sorted(map(len, opened)) == [2, 2, 2], opened
    assert {peer for peers in opened for peer in peers} == {CLIENT}, opened


def test_pubsub_crosses_nodes_behind_nginx(cluster: Cluster) -> None:
    """
    Three subscribers through nginx, spread over the nodes, all receive
    what a fourth client publishes (through whichever node nginx gave it),
    by way of the Redis broker.
    """
    before = cluster.opened("/pubsub")
    with ExitStack() as stack:
        subscribers = [stack.enter_context(ws(cluster.url("/pubsub"))) for _ in range(3)]
        for subscriber in subscribers:
            subscriber.send(json.dumps({"action": "subscribe", "topic": "deploy"}))
        publisher = stack.enter_context(ws(cluster.url("/pubsub")))
        opened = settled(lambda: opened_since(cluster, before, "/pubsub"), 4)
        # (Balanced: 1, 1 and 2; at least, more than one node.)
        assert sum(map(len, opened)) == 4 and sum(1 for peers in opened if peers) >= 2, opened
        # A subscription reaches Redis a moment after it is made: publish
        # until every subscriber has heard (each message says its number).
        heard: list[set[int]] = [set() for _ in subscribers]
        deadline = time.monotonic() + WAIT
        number = 0
        while not all(heard) and time.monotonic() < deadline:
            number += 1
            publisher.send(json.dumps({"action": "publish", "topic": "deploy", "data": number}))
            for index, subscriber in enumerate(subscribers):
                heard[index] |= _deliveries(subscriber, "deploy", 0.1)
        assert all(heard), heard
        # Once subscribed everywhere, every publication reaches everyone.
        number += 1
        publisher.send(json.dumps({"action": "publish", "topic": "deploy", "data": number}))
        for subscriber in subscribers:
            deadline = time.monotonic() + WAIT
            got: set[int] = set()
            while number not in got and time.monotonic() < deadline:
                got |= _deliveries(subscriber, "deploy", 0.2)
            assert number in got


def _deliveries(client: ClientConnection, topic: str, seconds: float) -> set[int]:
    """
    The data of the deliveries on C{topic} that C{client} receives within
    C{seconds} (subscription answers and other fields are skipped, so this
    holds with and without delivery positions).
    """
    got: set[int] = set()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(client.recv(timeout=left))
        except TimeoutError:
            break
        if message.get("topic") == topic and "data" in message:
            got.add(message["data"])
    return got


def test_static_site_through_the_proxy(cluster: Cluster) -> None:
    """
    The static page comes through nginx exactly as a node serves it;
    C{/metrics} (one node's, meaningless behind a balancer) does not.
    """
    with urllib.request.urlopen(cluster.url("/", "http"), timeout=WAIT) as page:
        assert page.status == 200 and "text/html" in page.headers["Content-Type"]
        proxied = page.read()
    with urllib.request.urlopen(cluster.nodes[0].url, timeout=WAIT) as page:
        assert page.read() == proxied
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(cluster.url("/metrics", "http"), timeout=WAIT)
    assert refused.value.code == 404
    assert any('"GET / HTTP/1.1" 200 upstream=127.0.0.1:' in line for line in cluster.nginx.accessLog())


def test_header_from_an_untrusted_peer_is_ignored(cluster: Cluster) -> None:
    """
    A client that reaches a node directly (not through nginx) is logged by
    its own address and port, whatever C{X-Forwarded-For} it sends.
    """
    node = cluster.nodes[0]
    before = len(node.opened("/echo"))
    with ws(f"ws://127.0.0.1:{node.port}/echo", additional_headers={"X-Forwarded-For": "203.0.113.9"}) as client:
        client.send("direct")
        assert client.recv(timeout=WAIT) == "direct"
        port = client.socket.getsockname()[1]
        [peer] = settled(lambda: [node.opened("/echo")[before:]], 1)[0]
    assert peer == f"{CLIENT}:{port}"


def test_idle_websocket_outlives_proxy_read_timeout(tmp_path: Path) -> None:
    """
    nginx closes an upgraded connection silent for C{proxy_read_timeout}:
    the node's keepalive pings (every C{--ping-interval} of silence) keep
    an idle WebSocket alive past it, which is why the shipped timeout is
    sized above the ping interval. Without pings the same connection is
    cut at the timeout.
    """
    with Cluster(
        tmp_path,
        nodes=1,
        redis=False,
        nodeOptions=("--ping-interval", "0.3"),
        nginxOverrides={"proxy_read_timeout": "1s", "proxy_send_timeout": "1s"},
    ) as cluster:
        with ws(cluster.url("/echo")) as client:
            time.sleep(2.0)
            client.send("still here")
            assert client.recv(timeout=WAIT) == "still here"
        node = cluster.nodes[0]
        node.setOption("--ping-interval", "0")
        node.restart()
        with ws(cluster.url("/echo")) as client:
            with pytest.raises(ConnectionClosed):
                client.recv(timeout=WAIT)
            assert client.close_code == 1006  # nginx dropped the TCP connection


def test_nginx_alone_is_usable(tmp_path: Path) -> None:
    """
    L{Nginx} runs without a cluster around it (for tests of their own), and
    stops cleanly, leaving no worker behind on its port.
    """
    from ..support.net import accepts, free_port

    upstream = free_port()
    with Nginx(tmp_path, [upstream]) as nginx:
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"http://127.0.0.1:{nginx.port}/", timeout=WAIT)
        assert error.value.code == 502  # nothing listens upstream
    assert not accepts(nginx.port)


def test_nodes_and_redis_can_be_killed_and_restarted(tmp_path: Path) -> None:
    """
    What a chaos test does with the fixtures, and what nginx makes of it:
    with one node SIGKILLed, new WebSockets through nginx all land on the
    other (the failed connect is retried there); a SIGTERMed node closes
    its WebSockets with 1001, through nginx, and its clients reconnect to
    the node that came back. Redis with its append-only file keeps its data
    across a restart, and without it does not.
    """
    with Cluster(tmp_path, nodes=2, appendonly=True) as cluster:
        first, second = cluster.nodes
        first.kill()
        before = cluster.opened("/echo")
        with ExitStack() as stack:
            for _ in range(3):
                stack.enter_context(ws(cluster.url("/echo"))).send("up?")
            opened = settled(lambda: opened_since(cluster, before, "/echo"), 3)
        assert list(map(len, opened)) == [0, 3], opened
        first.start()
        with ws(cluster.url("/echo")) as client:
            # Both nodes are idle again: least_conn may pick either.
            serving = next(node for node in (first, second) if len(node.opened("/echo")) > len(before[node.index]))
            other = second if serving is first else first
            serving.terminate()
            with pytest.raises(ConnectionClosed):
                client.recv(timeout=WAIT)
            assert client.close_code == 1001
        count = len(other.opened("/echo"))
        with ws(cluster.url("/echo")) as client:
            client.send("again")
            assert client.recv(timeout=WAIT) == "again"
        assert len(settled(lambda: [other.opened("/echo")], count + 1)[0]) == count + 1
        serving.start()

        redis = cluster.redis
        assert redis is not None
        redis.command("SET", "kept", "yes")
        redis.restart()
        assert redis.command("GET", "kept") == "yes"
        redis.restart(kill=True)
        assert redis.command("GET", "kept") == "yes"

    from ..support.cluster import Redis

    with Redis(tmp_path / "volatile", appendonly=False) as volatile:
        volatile.command("SET", "kept", "yes")
        volatile.restart()
        assert volatile.command("GET", "kept") is None
