"""
Tests for credential redaction (issue #12, item 9): L{txpulse.logs.redact}, the
resource's refusal log line and L{WebSocketSite}'s access log.
"""

from __future__ import annotations

import json
from pathlib import Path

from twisted.internet.task import Clock

from txpulse.logs.redact import redactText, redactURL
from txpulse.plugin.metrics import ConnectionRegistry
from txpulse.plugin.tap import Options, buildRoot
from txpulse.server.auth import generateKeySet
from txpulse.server.site import WebSocketSite

from ..support.http import Client
from ..support.logs import AccessLog, captured_logs


def test_redact_url() -> None:
    """
    Credential parameters lose their value (whatever their position, case
    or percent-encoding of the name); everything else stays.
    """
    assert redactURL("ws://h:1/chat?ws_token=abc.def&room=x") == "ws://h:1/chat?ws_token=[REDACTED]&room=x"
    assert redactURL("/chat?room=x&WS_TOKEN=abc#f") == "/chat?room=x&WS_TOKEN=[REDACTED]#f"
    assert redactURL("/c?ws%5Ftoken=abc") == "/c?ws%5Ftoken=[REDACTED]"
    assert redactURL("/c?access_token=a&token=b&tokens=c") == "/c?access_token=[REDACTED]&token=[REDACTED]&tokens=c"
    assert redactURL("/c?ws_token=") == "/c?ws_token="
    assert redactURL("/plain/path") == "/plain/path"


def test_redact_text() -> None:
    """
    In free text (a log line, an error message), URLs are redacted as by
    L{redactURL}, and so are Bearer and Basic credentials.
    """
    line = '"GET /chat?ws_token=eyJh.b.c HTTP/1.1" 401 "http://x/?ws_token=zz" Authorization: Bearer k-123'
    assert redactText(line) == (
        '"GET /chat?ws_token=[REDACTED] HTTP/1.1" 401 "http://x/?ws_token=[REDACTED]" Authorization: Bearer [REDACTED]'
    )
    assert redactText("bad --header 'Authorization Basic dXNlcjpwYXNz'") == (
        "bad --header 'Authorization Basic [REDACTED]'"
    )


def test_refused_handshake_logs_no_token(tmp_path: Path) -> None:
    """
    A refused handshake carrying a valid C{ws_token} (here: no
    C{Upgrade} header, 426) leaves no trace of the token, neither in the
    refusal log line nor in L{WebSocketSite}'s access log line.
    """
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"k-alice": "alice"}))
    jwk = tmp_path / "jwk.json"
    jwk.write_text(generateKeySet())
    options = Options()
    options.parseOptions(["--auth-keys", str(keys), "--jwk", str(jwk), "--protect", "/chat"])
    clock = Clock()
    site = WebSocketSite(
        buildRoot(options, ConnectionRegistry(clock=clock, logConnections=False), clock), reactor=clock
    )
    access = AccessLog()
    site.logFile = access  # type: ignore[assignment]
    _, body = Client(site).request(b"GET /@wstoken HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-alice\r\n\r\n")
    token = json.loads(body)["token"]
    secret = token.split(".")[-1]
    with captured_logs() as lines:
        head, _ = Client(site).request(
            f"GET /chat?ws_token={token} HTTP/1.1\r\nHost: x\r\nReferer: http://x/?ws_token={token}\r\n\r\n".encode()
        )
    assert head.startswith(b"HTTP/1.1 426")
    refusal = [line for line in lines if "handshake refused" in line]
    assert refusal and "/chat?ws_token=[REDACTED]" in refusal[0]
    assert access.lines and "/chat?ws_token=[REDACTED]" in access.lines[-1]
    assert all(secret not in line for line in lines + access.lines)
