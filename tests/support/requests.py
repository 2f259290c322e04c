"""
Upgrade requests, built line by line and independently of txpulse: the one
builder (L{upgrade_request}) serves the in-memory tests (a C{Site} on a
C{StringTransport}) and the raw sockets of the loopback suites alike.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable

#: A fixed C{Sec-WebSocket-Key} for the in-memory tests.
KEY = base64.b64encode(b"0123456789abcdef").decode()

#: The sample nonce of RFC 6455 §1.3.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def upgrade_request(
    path: str = "/ws",
    *,
    host: str = "localhost",
    method: str = "GET",
    version: str = "HTTP/1.1",
    key: str | None = KEY,
    wsVersion: str | None = "13",
    extra: Iterable[tuple[str, str]] = (),
    **headers: str,
) -> bytes:
    """
    A WebSocket upgrade request for C{path}, any part of which may be wrong
    or missing.

    @param key: the C{Sec-WebSocket-Key} (C{None} leaves it out).
    @param wsVersion: the C{Sec-WebSocket-Version} (C{None} leaves it out).
    @param extra: header lines appended as they are (repeats allowed).
    @param headers: headers set by name, underscores becoming dashes: a
        standard one is replaced where it stands, C{""} removes it, a new
        one is appended.
    """
    fields = {"Host": host, "Upgrade": "websocket", "Connection": "Upgrade"}
    if key is not None:
        fields["Sec-WebSocket-Key"] = key
    if wsVersion is not None:
        fields["Sec-WebSocket-Version"] = wsVersion
    for name, value in headers.items():
        name = name.replace("_", "-")
        if value == "":
            fields.pop(name, None)
        else:
            fields[name] = value
    lines = [f"{method} {path} {version}", *(f"{k}: {v}" for k, v in fields.items())]
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def request_bytes(port: int, path: str = "/echo", *, key: str | None = SAMPLE_KEY, **options: object) -> bytes:
    """
    L{upgrade_request} for a server on C{127.0.0.1:port}, with RFC 6455's
    sample key unless told otherwise.
    """
    return upgrade_request(path, host=f"127.0.0.1:{port}", key=key, **options)  # type: ignore[arg-type]


def keyed_upgrade(
    port: int,
    path: str = "/echo",
    *,
    key: str | None = None,
    version: str = "13",
    extra: Iterable[tuple[str, str]] = (),
) -> tuple[bytes, str]:
    """
    A valid upgrade request for C{127.0.0.1:port} (with a fresh random key
    unless C{key} is given), and the key it carries.
    """
    key = key or base64.b64encode(os.urandom(16)).decode("ascii")
    return request_bytes(port, path, key=key, wsVersion=version, extra=extra), key
