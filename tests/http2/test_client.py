"""
The client side of RFC 8441: C{WebSocketClientEndpoint.new(..., http2=...)}
against txpulse's HTTP/2 server (the server side is tested against an
independent peer in L{tests.http2.test_rfc8441}). Several WebSockets to an
origin share one TCP+TLS connection; C{"auto"} falls back to HTTP/1.1 when
the server does not offer them, C{True} fails.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor

from txpulse import ConnectionRejected, WebSocketClientEndpoint
from txpulse.client.http2 import HTTP2Pool
from txpulse.core.exceptions import HandshakeError, NegotiationError
from txpulse.server.resource import WebSocketResource

from ..support.apps import RecordingFactory
from ..support.pki import PKI
from ..support.waits import within

pytestmark = pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")


def endpoint(server: Any, pki: PKI, path: str = "/echo", **options: Any) -> WebSocketClientEndpoint:
    options.setdefault("http2Pool", HTTP2Pool())
    return WebSocketClientEndpoint.new(reactor, server.url(path, host="localhost"), caFile=str(pki.caFile), **options)


def over_http2(app: Any) -> bool:
    """
    Whether a server-side application's WebSocket runs on an HTTP/2 stream.
    """
    return getattr(app.transport.transport, "isHTTP2", False) is True


@pytest_twisted.ensureDeferred
async def test_websockets_to_one_origin_share_one_connection(serve: Any, pki: PKI, recorder: RecordingFactory) -> None:
    """
    With C{http2=True}, three WebSockets to the same origin are three
    streams of one TCP+TLS connection; each echoes, and closing one leaves
    the others open.
    """
    server = serve()
    pool = HTTP2Pool()
    clients = RecordingFactory()
    apps = [await within(endpoint(server, pki, http2=True, http2Pool=pool).connect(clients)) for _ in range(3)]
    assert len(server.site.channels) == 1
    assert len(pool.connections[next(iter(pool.connections))]) == 1
    for i, app in enumerate(apps):
        app.transport.sendTextMessage(f"hello {i}")
        assert await app.next() == f"hello {i}"
    assert all(over_http2(app) for app in recorder.built)
    apps[0].transport.loseConnection(1000, "done")
    closed = await apps[0].closed()
    assert (closed.code, closed.clean) == (1000, True)
    assert (await recorder.built[0].closed()).code == 1000
    apps[1].transport.sendBytesMessage(b"\0" * 100_000)
    assert await apps[1].next() == b"\0" * 100_000
    assert len(server.site.channels) == 1


@pytest_twisted.ensureDeferred
async def test_server_close_reaches_the_client_cleanly(serve: Any, pki: PKI, recorder: RecordingFactory) -> None:
    """
    The server closes (1001): the client answers inside the stream and both
    applications see a clean 1001.
    """
    server = serve()
    app = await within(endpoint(server, pki, http2=True).connect(RecordingFactory()))
    serverApp = await recorder.next()
    serverApp.transport.loseConnection(1001, "bye")
    closed = await app.closed()
    assert (closed.code, closed.reason, closed.clean) == (1001, "bye", True)
    assert (await serverApp.closed()).clean


@pytest_twisted.ensureDeferred
async def test_subprotocol_and_compression_over_http2(serve: Any, pki: PKI) -> None:
    """
    Subprotocol and permessage-deflate are negotiated in the extended
    CONNECT's headers, and compressed messages flow both ways.
    """
    factory = RecordingFactory(echo=True)
    server = serve({"chat": WebSocketResource(factory, subprotocols=["v2"], compression=True, pingInterval=None)})
    app = await within(
        endpoint(server, pki, "/chat", http2=True, subprotocols=["v1", "v2"], compression=True).connect(
            RecordingFactory()
        )
    )
    assert app.transport.subprotocol == "v2"
    app.transport.sendTextMessage("squeeze " * 500)
    assert await app.next() == "squeeze " * 500
    # 4,000 bytes of text went in a few dozen compressed ones.
    assert factory.built[0].transport.bytesIn < 500


@pytest_twisted.ensureDeferred
async def test_refusal_is_connection_rejected_with_the_body(serve: Any, pki: PKI) -> None:
    """
    A refusal (403 from the accept hook) fails C{connect()} with
    L{ConnectionRejected} carrying the status and the body.
    """

    def refuse(request: Any) -> None:
        raise HandshakeError("not you", 403)

    server = serve({"guarded": WebSocketResource(RecordingFactory(), accept=refuse)})
    with pytest.raises(ConnectionRejected) as caught:
        await within(endpoint(server, pki, "/guarded", http2=True).connect(RecordingFactory()))
    assert caught.value.statusCode == 403
    assert await within(caught.value.whenBodyRead()) == b"not you\n"


@pytest.mark.parametrize("offer", ["no-h2", "no-setting"])
@pytest_twisted.ensureDeferred
async def test_auto_falls_back_to_http11_and_true_fails(
    serve: Any, pki: PKI, recorder: RecordingFactory, offer: str
) -> None:
    """
    Against a server without HTTP/2 (or with HTTP/2 but without the RFC
    8441 setting), C{http2="auto"} opens the WebSocket over HTTP/1.1 and
    C{http2=True} fails with L{NegotiationError}.
    """
    if offer == "no-h2":
        server = serve(http2WebSockets=True)
        server.site.http2 = False
    else:
        server = serve(http2WebSockets=False)
    pool = HTTP2Pool()
    app = await within(endpoint(server, pki, http2="auto", http2Pool=pool).connect(RecordingFactory()))
    app.transport.sendTextMessage("over 1.1")
    assert await app.next() == "over 1.1"
    assert not over_http2(recorder.built[0])
    assert pool.connections == {}
    with pytest.raises(NegotiationError):
        await within(endpoint(server, pki, http2=True).connect(RecordingFactory()))


def test_http2_needs_wss_and_a_known_mode() -> None:
    """
    C{http2=True} on a ws:// URL, or an unknown mode, is a C{ValueError};
    C{"auto"} on ws:// is plain HTTP/1.1.
    """
    with pytest.raises(ValueError, match="wss://"):
        WebSocketClientEndpoint.new(reactor, "ws://localhost/", http2=True)
    with pytest.raises(ValueError, match="http2"):
        WebSocketClientEndpoint.new(reactor, "wss://localhost/", http2="yes")
    assert WebSocketClientEndpoint.new(reactor, "ws://localhost/", http2="auto").http2 is False


@pytest_twisted.ensureDeferred
async def test_cli_http2_flag(serve: Any, pki: PKI, recorder: RecordingFactory) -> None:
    """
    C{txpulse-client --http2} sends stdin's lines over an HTTP/2 stream and
    prints the echoes; C{--http2} with C{--reconnect} is a usage error
    (exit 2), for now.
    """
    import subprocess
    import sys

    from twisted.internet.threads import deferToThread

    server = serve()
    url = server.url("/echo", host="localhost")
    command = [
        sys.executable,
        "-m",
        "txpulse.client",
        "--http2",
        "--cafile",
        str(pki.caFile),
        "-q",
        "--count",
        "1",
        url,
    ]
    done = await deferToThread(subprocess.run, command, input="over h2\n", capture_output=True, text=True, timeout=8)
    assert (done.returncode, done.stdout) == (0, "over h2\n"), done.stderr
    assert over_http2(recorder.built[0])
    usage = await deferToThread(
        subprocess.run, [*command[:4], "--reconnect", url], capture_output=True, text=True, timeout=20
    )
    assert usage.returncode == 2 and "--http2" in usage.stderr


@pytest_twisted.ensureDeferred
async def test_more_websockets_than_the_servers_stream_limit_open_another_connection(
    serve: Any, pki: PKI, recorder: RecordingFactory
) -> None:
    """
    The server takes 100 streams at once per connection (Twisted's h2
    setting): 120 WebSockets opened at once to one origin go over two
    connections, and all of them echo.
    """
    from twisted.internet.defer import Deferred, gatherResults

    server = serve(maxConnectionsPerAddress=0)
    pool = HTTP2Pool()
    clients = RecordingFactory()
    ep = endpoint(server, pki, http2=True, http2Pool=pool)
    apps = await within(gatherResults([Deferred.fromCoroutine(ep.connect(clients)) for _ in range(120)]), 20)
    assert [len(live) for live in pool.connections.values()] == [2]
    assert len(server.site.channels) == 2
    for i, app in enumerate(apps):
        app.transport.sendTextMessage(str(i))
    assert [await app.next() for app in apps] == [str(i) for i in range(120)]


@pytest_twisted.ensureDeferred
async def test_tls_failure_is_the_error_not_a_missing_http2(serve: Any, pki: PKI) -> None:
    """
    A connection that fails before the server's SETTINGS (here: TLS
    verification, the test CA not trusted) fails C{connect()} with that
    error, and the origin is not taken for one without HTTP/2.
    """
    from OpenSSL import SSL
    from twisted.python.failure import Failure

    server = serve()
    pool = HTTP2Pool()
    untrusting = WebSocketClientEndpoint.new(reactor, server.url("/echo", host="localhost"), http2=True, http2Pool=pool)
    try:
        await within(untrusting.connect(RecordingFactory()))
    except Exception:
        failure = Failure()
    else:
        raise AssertionError("connected without trusting the CA")
    assert not failure.check(NegotiationError, ConnectionRejected), failure
    # The same error as over HTTP/1.1 (txpulse-client: exit 4).
    assert failure.check(SSL.Error), failure
    app = await within(endpoint(server, pki, http2=True, http2Pool=pool).connect(RecordingFactory()))
    assert app.transport.transport.isHTTP2
