"""
Tests for the C{twistd txpulse} plugin (L{txpulse.plugin.tap}): options, the
service it builds, and every mount answering, in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.web.server import Site

from txpulse.core.assembly import AssemblyBudget
from txpulse.core.frames import Opcode
from txpulse.plugin.metrics import ConnectionRegistry
from txpulse.plugin.shutdown import GracefulShutdown
from txpulse.plugin.tap import Options, buildRoot, makeService
from txpulse.server.auth import generateKeySet
from txpulse.settings import ConnectionSettings, Side, declarations

from ..support.frames import client_frame, server_frames
from ..support.http import Client
from ..support.requests import upgrade_request


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_defaults() -> None:
    """
    With no options: tcp:8080, 1 s heartbeat, txpulse's resource defaults.
    """
    options = parse()
    assert options["listen"] == ["tcp:8080"]
    assert options["heartbeat"] == 1.0
    assert options["max-message-size"] == 1 << 20
    assert options["ping-interval"] == 20.0


def test_every_option_parses() -> None:
    """
    Each option reaches the options dictionary in the right type.
    """
    options = parse(
        "--listen", "tcp:0", "--listen", "unix:/tmp/txpulse-test.sock",
        "--heartbeat", "0.5", "--ping-interval", "0", "--ping-timeout", "3", "--idle-timeout", "60",
        "--close-timeout", "2", "--handshake-timeout", "4", "--max-message-size", "64K",
        "--max-frame-size", "16K", "--max-write-buffer", "1M", "--allowed-origin", "https://a.example",
        "--allowed-origin", "https://b.example", "--subprotocol", "v2", "--subprotocol", "v1",
        "--shutdown-timeout", "1.5", "--app", "shout=tests.support.custom_app:ShoutFactory",
    )  # fmt: skip
    assert options["listen"] == ["tcp:0", "unix:/tmp/txpulse-test.sock"]
    assert options["max-message-size"] == 65536 and options["max-frame-size"] == 16384
    assert options["max-write-buffer"] == 1 << 20
    assert options["allowedOrigins"] == ["https://a.example", "https://b.example"]
    assert options["subprotocols"] == ["v2", "v1"]
    assert options["shutdown-timeout"] == 1.5
    assert [name for name, _ in options["factories"]] == ["shout"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--heartbeat", "0"],
        ["--heartbeat", "fast"],
        ["--ping-timeout", "-1"],
        ["--max-message-size", "12Q"],
        ["--max-message-size", "0"],
        ["--listen", "tcp:notaport"],
        ["--listen", "nosuchendpoint:1"],
        ["--path", "/no/such/dir"],
        ["--app", "noequals"],
        ["--app", "x=tests.support.custom_app"],
        ["--app", "x=no.such.module:f"],
        ["--app", "x=tests.support.custom_app:missing"],
        ["--app", "x=tests.support.custom_app:notAFactory"],
        ["--app", "ws=tests.support.custom_app:ShoutFactory"],
    ],
)
def test_bad_values_are_usage_errors(argv: list[str]) -> None:
    """
    A bad value is a L{usage.UsageError} with one line, never a traceback.
    """
    with pytest.raises(usage.UsageError) as info:
        parse(*argv)
    assert "\n" not in str(info.value)


def test_app_accepts_a_callable_returning_a_factory() -> None:
    """
    C{--app NAME=module:callable} calls it to get the factory.
    """
    ((name, factory),) = parse("--app", "shout=tests.support.custom_app:makeFactory")["factories"]
    assert name == "shout" and hasattr(factory, "buildProtocol")


def test_make_service_listens_on_every_endpoint() -> None:
    """
    One listening service per C{--listen}, plus the graceful-shutdown
    service, all under one parent.
    """
    top = makeService(parse("--listen", "tcp:0", "--listen", "tcp:0:interface=127.0.0.1"))
    children = list(top)
    assert sum(isinstance(child, StreamServerEndpointService) for child in children) == 2
    kinds = [type(child).__name__ for child in children]
    assert kinds.index("GracefulShutdown") < kinds.index("StreamServerEndpointService"), "stops after the listeners"
    assert kinds[0] == "_BrokerService", "the broker stops last, after the connections"


def site_for(*argv: str) -> tuple[Site, ConnectionRegistry, Clock]:
    clock = Clock()
    registry = ConnectionRegistry(clock=clock, logConnections=False)
    return Site(buildRoot(parse(*argv), registry, clock), reactor=clock), registry, clock


async def fetch(root: Any, path: bytes) -> tuple[int, bytes, bytes]:
    """
    GET C{path} from C{root} served on a real loopback port (static files
    are streamed through the reactor's cooperator, so they need one).
    """
    from twisted.internet import reactor
    from twisted.web.client import Agent, readBody

    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    try:
        response = await Agent(reactor).request(b"GET", b"http://127.0.0.1:%d%s" % (port.getHost().port, path))
        body = await readBody(response)
        contentType = (response.headers.getRawHeaders(b"content-type") or [b""])[0]
        return response.code, contentType, body
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_root_serves_the_static_site() -> None:
    """
    C{/} answers with the packaged index.html.
    """
    root = buildRoot(parse(), ConnectionRegistry(logConnections=False), Clock())
    code, contentType, body = await fetch(root, b"/")
    assert code == 200 and contentType.startswith(b"text/html")
    assert b"<html" in body.lower()


@pytest.mark.parametrize(
    ("path", "sent", "expected"), [("/echo", b"ping", "ping"), ("/ws", b"hi", "reply to hi"), ("/shout", b"hey", "HEY")]
)
def test_websocket_mounts_answer_101(path: str, sent: bytes, expected: str) -> None:
    """
    C{/ws}, C{/echo} and an C{--app} mount upgrade and answer.
    """
    site, registry, _ = site_for("--app", "shout=tests.support.custom_app:ShoutFactory")
    head, rest = Client(site).request(upgrade_request(path) + client_frame(Opcode.TEXT, sent))
    assert head.startswith(b"HTTP/1.1 101")
    assert [f.payload for f in server_frames(rest)] == [expected]
    assert len(registry.openConnections(path)) == 1


def test_heartbeat_interval_option() -> None:
    """
    C{--heartbeat} sets the /ws demo's period.
    """
    from txpulse.demos.apps import HeartbeatFactory

    site, _, _ = site_for("--heartbeat", "0.25")
    ws = site.resource.children[b"ws"]
    assert isinstance(ws.factory, HeartbeatFactory) and ws.factory._interval == 0.25


def test_resource_options_reach_the_resources() -> None:
    """
    Limits and origins from the command line apply to every mount.
    """
    site, _, _ = site_for("--allowed-origin", "https://good.example", "--max-message-size", "10")
    head, _ = Client(site).request(upgrade_request("/echo", Origin="https://evil.example"))
    assert head.startswith(b"HTTP/1.1 403")
    head, rest = Client(site).request(upgrade_request("/echo") + client_frame(Opcode.BINARY, b"x" * 11))
    assert server_frames(rest)[-1].payload[0] == 1009


def test_incomplete_message_budget_is_shared_by_every_mount() -> None:
    """
    C{--max-incomplete-size} (64 MiB by default) is one budget for the whole
    process: every WebSocket mount charges the same L{AssemblyBudget}.
    """
    assert parse()["max-incomplete-size"] == 64 << 20
    root = buildRoot(parse("--max-incomplete-size", "8M"), ConnectionRegistry(logConnections=False), Clock())
    budgets = {id(root.children[name]._incompleteBudget) for name in (b"ws", b"echo", b"pubsub", b"chat")}
    assert len(budgets) == 1
    budget = root.children[b"echo"]._incompleteBudget
    assert isinstance(budget, AssemblyBudget) and budget.limit == 8 << 20


@pytest_twisted.ensureDeferred
async def test_path_serves_a_directory_with_rpy_scripts(tmp_path: Path) -> None:
    """
    C{--path DIR} serves the user's files, and C{.rpy} files run.
    """
    (tmp_path / "index.html").write_text("<html>mine</html>")
    (tmp_path / "hello.rpy").write_text(
        "from twisted.web.resource import Resource\n"
        "class Hello(Resource):\n"
        "    isLeaf = True\n"
        "    def render_GET(self, request):\n"
        "        return b'hello from rpy'\n"
        "resource = Hello()\n"
    )
    site, registry, clock = site_for("--path", str(tmp_path))
    assert (await fetch(site.resource, b"/"))[2] == b"<html>mine</html>"
    assert (await fetch(site.resource, b"/hello.rpy"))[2] == b"hello from rpy"
    head, _ = Client(site).request(upgrade_request("/echo"))
    assert head.startswith(b"HTTP/1.1 101"), "the WebSocket mounts stay"


def test_metrics_report_connections_messages_and_refusals() -> None:
    """
    C{/metrics} is Prometheus text: open connections per path, messages
    and bytes in/out, refusals by status and closes by code.
    """
    site, registry, _ = site_for("--allowed-origin", "https://good.example")
    echo = Client(site)
    echo.request(upgrade_request("/echo") + client_frame(Opcode.TEXT, b"a") + client_frame(Opcode.TEXT, b"b"))
    Client(site).request(upgrade_request("/echo", Origin="https://evil.example"))
    closing = Client(site)
    closing.request(upgrade_request("/ws") + client_frame(Opcode.CLOSE, b"\x0f\xa0"))
    closing.channel.connectionLost(None)  # type: ignore[arg-type]
    _, body = Client(site).request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    text = body.decode()
    assert 'txpulse_open_connections{path="/echo"} 1.0' in text
    assert 'txpulse_messages_received_total{path="/echo"} 2.0' in text
    assert 'txpulse_messages_sent_total{path="/echo"} 2.0' in text
    assert 'txpulse_handshake_refusals_total{path="/echo",status="403"} 1.0' in text
    assert 'txpulse_closes_total{code="4xxx",path="/ws"} 1.0' in text, "private-use codes share one label"
    assert "txpulse_bytes_received_total" in text and "txpulse_ping_round_trip_seconds" in text


def test_graceful_shutdown_closes_with_1001_and_waits() -> None:
    """
    Stopping the service sends 1001 to every open WebSocket and fires once
    they are closed (or aborts them after the timeout).
    """
    site, registry, clock = site_for()
    client = Client(site)
    client.request(upgrade_request("/echo"))
    shutdown = GracefulShutdown(registry, timeout=5)
    shutdown.startService()
    done = shutdown.stopService()
    assert server_frames(client.transport.value().partition(b"\r\n\r\n")[2])[-1].payload == (
        1001,
        "server shutting down",
    )
    assert not done.called
    client.channel.dataReceived(client_frame(Opcode.CLOSE, b"\x03\xe9"))
    assert client.transport.disconnecting
    client.channel.connectionLost(None)  # type: ignore[arg-type]
    assert done.called


def test_graceful_shutdown_aborts_stragglers() -> None:
    """
    A peer that never answers the 1001 is aborted after the timeout.
    """
    site, registry, clock = site_for()
    client = Client(site)
    client.request(upgrade_request("/echo"))
    shutdown = GracefulShutdown(registry, timeout=2)
    shutdown.startService()
    done = shutdown.stopService()
    clock.advance(2)
    assert client.transport.aborted
    client.channel.connectionLost(None)  # type: ignore[arg-type]
    assert done.called


def test_registry_logs_one_line_per_connection() -> None:
    """
    One log line when a connection opens and one when it closes (with path,
    code and duration), none per message.
    """
    from ..support.logs import captured_logs

    clock = Clock()
    registry = ConnectionRegistry(clock=clock)
    site = Site(buildRoot(parse(), registry, clock), reactor=clock)
    with captured_logs() as logs:
        client = Client(site)
        client.request(upgrade_request("/echo") + b"".join(client_frame(Opcode.TEXT, b"m") for _ in range(50)))
        clock.advance(3)
        client.channel.dataReceived(client_frame(Opcode.CLOSE, b"\x03\xe8"))
        client.channel.connectionLost(None)  # type: ignore[arg-type]
    lines = [line for line in logs if "WebSocket" in line]
    assert len(lines) == 2, lines
    assert "open" in lines[0] and "/echo" in lines[0]
    assert "code=1000" in lines[1] and "duration=3.0s" in lines[1]


def test_http_hardening_defaults() -> None:
    """
    The site options the plugin passes by default: 10 s per request, 15 s
    keep-alive, 20 s for a response to make progress, 100 requests per connection, a total cap from the open-files
    limit, 256 per address, no request bodies for the built-in tree (1 MiB
    with --path), any Host, no trusted proxy; and a backlog of 1024.
    """
    from txpulse.plugin.tap import siteOptions

    options = parse()
    assert siteOptions(options) == {
        "requestTimeout": 10.0,
        "keepAliveTimeout": 15.0,
        "sendTimeout": 20.0,
        "maxRequestsPerConnection": 100,
        "maxConnections": None,
        "maxConnectionsPerAddress": 256,
        "maxRequestBody": 0,
        "allowedHosts": None,
        "trustedProxies": None,
    }
    assert options["backlog"] == 1024
    assert siteOptions(parse("--path", str(Path(__file__).parent)))["maxRequestBody"] == 1 << 20


def test_http_hardening_options_parse() -> None:
    """
    Each HTTP hardening option reaches the site options; 0 disables the caps
    and refuses every body.
    """
    from txpulse.plugin.tap import siteOptions

    options = parse(
        "--request-timeout", "5", "--keepalive-timeout", "2", "--send-timeout", "3",
        "--max-requests-per-connection", "7",
        "--max-connections", "0", "--max-connections-per-address", "0", "--max-request-body", "64K",
        "--allowed-host", "example.com", "--allowed-host", "localhost:8080", "--backlog", "4096",
        "--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/8",
    )  # fmt: skip
    assert siteOptions(options) == {
        "requestTimeout": 5.0,
        "keepAliveTimeout": 2.0,
        "sendTimeout": 3.0,
        "maxRequestsPerConnection": 7,
        "maxConnections": 0,
        "maxConnectionsPerAddress": 0,
        "maxRequestBody": 65536,
        "allowedHosts": ["example.com", "localhost:8080"],
        "trustedProxies": ["127.0.0.1", "10.0.0.0/8"],
    }
    assert options["backlog"] == 4096
    assert siteOptions(parse("--path", str(Path(__file__).parent), "--max-request-body", "0"))["maxRequestBody"] == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["--allowed-host", "a:b"],
        ["--allowed-host", ""],
        ["--max-connections", "-1"],
        ["--max-request-body", "-5"],
        ["--backlog", "many"],
    ],
)
def test_bad_http_hardening_options(argv: list[str]) -> None:
    """
    A malformed allowed host or a negative count is a usage error.
    """
    with pytest.raises(usage.UsageError):
        parse(*argv)


def test_backlog_is_added_where_none_is_set() -> None:
    """
    C{--backlog} goes to tcp, tcp6, ssl and unix endpoints without their
    own C{backlog=}; others are left alone.
    """
    from txpulse.plugin.tap import withBacklog

    assert withBacklog("tcp:8080", 1024) == "tcp:8080:backlog=1024"
    assert withBacklog("ssl:8443:privateKey=k.pem", 1024) == "ssl:8443:privateKey=k.pem:backlog=1024"
    assert withBacklog("tcp:8080:backlog=50", 1024) == "tcp:8080:backlog=50"
    assert withBacklog("systemd:domain=INET:index=0", 1024) == "systemd:domain=INET:index=0"
    assert withBacklog("tcp:8080", 0) == "tcp:8080"


def test_service_listens_with_the_backlog_and_caps() -> None:
    """
    C{makeService} builds the site with the options' limits, and listens with
    the backlog.
    """
    service = makeService(parse("--listen", "tcp:0", "--max-connections-per-address", "9"))
    listeners = [s for s in service if isinstance(s, StreamServerEndpointService)]
    assert listeners[0].endpoint._backlog == 1024  # type: ignore[attr-defined]
    site = listeners[0].factory
    assert site.maxConnectionsPerAddress == 9
    assert site.maxRequestBody == 0


def test_metrics_listener_has_the_site_defences() -> None:
    """
    The C{--metrics-listen} site gets the main site's limits (allowed hosts,
    caps, deadlines) and takes no request bodies, even where the main site
    does (C{--max-request-body}).
    """
    service = makeService(
        parse(
            "--listen",
            "tcp:0",
            "--metrics-listen",
            "tcp:0:interface=127.0.0.1",
            "--allowed-host",
            "example.com",
            "--max-connections-per-address",
            "9",
            "--max-request-body",
            "5000",
            "--keepalive-timeout",
            "3",
        )
    )
    main, metrics = [s.factory for s in service if isinstance(s, StreamServerEndpointService)]
    assert main.maxRequestBody == 5000
    assert metrics.maxRequestBody == 0
    for site in (main, metrics):
        assert site.allowedHosts == ["example.com"]
        assert site.maxConnectionsPerAddress == 9
        assert site.keepAliveTimeout == 3


def test_connection_options_are_generated_from_the_settings() -> None:
    """
    Every server setting is a plugin option (generated from
    L{ConnectionSettings}, so the two cannot drift); the parsed ones land in
    C{options["settings"]}, and every mount uses them.
    """
    text = str(Options())
    for declared in declarations(Side.SERVER):
        assert f"--{declared.flag}" in text, declared.flag
    options = parse("--ping-interval", "5", "--idle-timeout", "60", "--max-frame-size", "16K", "--deflate")
    expected = ConnectionSettings(pingInterval=5.0, idleTimeout=60.0, maxFrameSize=16 << 10, compression=True)
    assert options["settings"] == expected
    root = buildRoot(options, ConnectionRegistry(logConnections=False), Clock())
    for name in (b"ws", b"echo", b"pubsub", b"chat"):
        assert root.children[name].settings == expected
    assert parse()["settings"] == ConnectionSettings()


def test_protected_mounts_default_to_same_origin(tmp_path: Path) -> None:
    """
    Without C{--allowed-origin}, a C{--protect}ed mount's settings allow only
    its own origin, the others any; with it, every mount has that list.
    """
    keys = tmp_path / "keys.json"
    keys.write_text('{"k": "alice"}')
    jwk = tmp_path / "jwk.json"
    jwk.write_text(generateKeySet())
    protect = ("--auth-keys", str(keys), "--jwk", str(jwk), "--protect", "/pubsub")
    root = buildRoot(parse(*protect), ConnectionRegistry(logConnections=False), Clock())
    assert root.children[b"pubsub"].settings.allowedOrigins == ("same-origin",)
    assert root.children[b"echo"].settings.allowedOrigins is None
    listed = parse(*protect, "--allowed-origin", "https://a.example")
    root = buildRoot(listed, ConnectionRegistry(logConnections=False), Clock())
    assert root.children[b"pubsub"].settings.allowedOrigins == ("https://a.example",)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ping-interval", "-3"], "--ping-interval: must not be negative: -3"),
        (["--heartbeat", "0"], "--heartbeat: must be positive: 0"),
        (["--max-request-body", "12Q"], "--max-request-body: not a size in bytes"),
        (["--backlog", "-1"], "--backlog: must not be negative: -1"),
        (["--deflate", "--no-deflate"], "--deflate and --no-deflate contradict each other"),
    ],
)
def test_usage_errors_name_the_option(argv: list[str], message: str) -> None:
    """
    A bad value of a connection setting, or of one of the plugin's own
    options, is a usage error that names the option.
    """
    with pytest.raises(usage.UsageError) as raised:
        parse(*argv)
    assert str(raised.value).startswith(message)
