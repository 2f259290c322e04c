"""
wss:// end to end: the Site served with C{reactor.listenSSL} (so the
WebSocket runs over Twisted's TLS wrapper transport), a certificate chain
generated at test time, and a C{websockets} client that trusts only that CA.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.tcp import Connection as TCPConnection
from wsproto.frame_protocol import Opcode

from txpulse import ConnectionClosed, WebSocketResource
from txpulse.demos.apps import EchoFactory

from ..support.apps import RecordingFactory
from ..support.logs import captured_logs
from ..support.peers import ws_close_received, ws_connect
from ..support.pki import PKI, make_pki
from ..support.rawsocket import client_frame
from ..support.requests import keyed_upgrade
from ..support.servers import site_for
from ..support.waits import in_thread

# PrivateCertificate.options() hands pyOpenSSL objects to pyOpenSSL, which
# now warns about it; that is Twisted's business, not this suite's.
pytestmark = pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    """
    A CA and a server certificate for C{localhost} and C{127.0.0.1}.
    """
    return make_pki(tmp_path, dnsNames=["localhost"])


@pytest.mark.parametrize("startTLS", [False, True], ids=["listenSSL", "startTLS"])
@pytest_twisted.ensureDeferred
async def test_wss_echoes_text_and_1mib_binary_then_closes_cleanly(
    serve: Any, pki: PKI, recorder: RecordingFactory, startTLS: bool
) -> None:
    """
    Over wss://, a text message and a 1 MiB binary message (one that
    overflows the socket buffer) are echoed, and a client close with 1000
    is echoed and reaches the app as a clean 1000. Both ways Twisted serves
    TLS: C{listenSSL}'s wrapper protocol, and C{startTLS} on a plain TCP
    connection (as L{twisted.internet.ssl.Port} does), where the wire must
    not write around the TLS layer straight to the socket.
    """
    server = serve(
        WebSocketResource(recorder, pingInterval=None, maxMessageSize=2 << 20), pki.serverOptions, startTLS=startTLS
    )
    payload = bytes(range(256)) * 4096

    async def client() -> tuple[Any, ...]:
        async with ws_connect(server.url(), ssl=pki.clientContext, max_size=2 << 20) as ws:
            await ws.send("héllo over tls")
            text = await ws.recv()
            await ws.send(payload)
            data = await ws.recv()
            await ws.close(1000, "done")
            return text, data == payload, len(data), ws.close_code

    assert server.url().startswith("wss://")
    assert await in_thread(client) == ("héllo over tls", True, 1 << 20, 1000)
    failure = await recorder.built[0].lostReason()
    assert failure.check(ConnectionClosed)
    assert (failure.value.code, failure.value.reason, failure.value.clean) == (1000, "done", True)
    tcp = recorder.built[0].transport.transport
    assert (isinstance(tcp, TCPConnection) and tcp.TLS) == startTLS, "the wrong kind of TLS transport"


@pytest_twisted.ensureDeferred
async def test_wss_server_initiated_close_reaches_client(serve: Any, pki: PKI, recorder: RecordingFactory) -> None:
    """
    Over wss://, C{transport.loseConnection(1001, "bye")} reaches the client
    as code 1001 with reason "bye", and the close completes cleanly.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None), pki.serverOptions)

    async def client() -> tuple[int, str]:
        return await ws_close_received(server.url(), ssl=pki.clientContext)

    result = in_thread(client)
    app = await recorder.next()
    app.transport.loseConnection(1001, "bye")
    assert await result == (1001, "bye")
    failure = await app.lostReason()
    assert (failure.value.code, failure.value.codeSent, failure.value.clean) == (1001, 1001, True)


@pytest_twisted.ensureDeferred
async def test_start_tls_protocol_error_ends_with_1002_and_a_clean_tls_close(
    serve: Any, raw: Any, pki: PKI, recorder: RecordingFactory
) -> None:
    """
    When the server fails a peer on a C{startTLS} connection, it must not
    half-close the raw TCP socket under the TLS layer (what it does on plain
    TCP to let the close frame arrive): the client gets close 1002, the
    app sees it, and nothing goes wrong in the server's TLS layer.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None), pki.serverOptions, startTLS=True)
    with captured_logs() as logs:
        sock = await raw.upgrade(server.port, sslContext=pki.clientContext)
        await sock.send(client_frame(0x1, b"unmasked", masked=False))
        messages = await sock.read_all_messages()
        failure = await (await recorder.next()).lostReason()
        await deferLater(reactor, 0.1, lambda: None)  # a failure in the TLS layer is logged a little later
    assert [(m.opcode, m.code) for m in messages] == [(Opcode.CLOSE, 1002)]
    assert failure.value.codeSent == 1002
    problems = [line for line in logs if "Traceback" in line or "Unhandled" in line]
    assert problems == []


@pytest_twisted.ensureDeferred
async def test_wss_frame_in_same_write_as_upgrade_request_is_delivered(serve: Any, raw: Any, pki: PKI) -> None:
    """
    Under TLS, a frame written together with the upgrade request (one TLS
    record) is delivered once the connection is upgraded.
    """
    server = serve(WebSocketResource(EchoFactory(), pingInterval=None), pki.serverOptions)
    sock = await raw.connect(server.port, pki.clientContext)
    request, _ = keyed_upgrade(server.port)
    await sock.send(request + client_frame(0x1, b"early over tls"))
    assert (await sock.read_response()).status == 101
    message = await sock.read_message()
    assert message is not None
    assert (message.opcode, message.payload) == (Opcode.TEXT, "early over tls")


@pytest_twisted.ensureDeferred
async def test_wss_connection_outlives_site_idle_timeout(serve: Any, pki: PKI) -> None:
    """
    Under TLS too, a WebSocket idle past the Site's 0.5 s HTTP idle timeout
    stays open and echoes afterwards.
    """
    site = site_for(WebSocketResource(EchoFactory(), pingInterval=None))
    site.timeOut = 0.5
    server = serve(site, pki.serverOptions)

    async def client() -> str:
        async with ws_connect(server.url(), ssl=pki.clientContext) as ws:
            await asyncio.sleep(1.0)  # idle past site.timeOut
            await ws.send("still here")
            return await ws.recv()

    assert await in_thread(client) == "still here"


@pytest_twisted.ensureDeferred
async def test_wss_server_keeps_serving_after_a_client_drops_tls_mid_message(
    serve: Any, raw: Any, pki: PKI, recorder: RecordingFactory
) -> None:
    """
    A TLS client that vanishes halfway through a frame leaves the app with
    code 1006, and the server still serves the next wss:// client.
    """
    server = serve(WebSocketResource(recorder, pingInterval=None), pki.serverOptions)
    sock = await raw.upgrade(server.port, sslContext=pki.clientContext)
    await sock.send(client_frame(0x2, b"x" * 1000)[:500])
    app = await recorder.next()
    sock.close()
    failure = await app.lostReason()
    assert (failure.value.code, failure.value.clean) == (1006, False)

    async def client() -> str:
        async with ws_connect(server.url(), ssl=pki.clientContext) as ws:
            await ws.send("next")
            return await ws.recv()

    assert await in_thread(client) == "next"
