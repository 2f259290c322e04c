# -*- test-case-name: tests.test_exports,tests.core.test_layering -*-
"""
The exceptions of the protocol core, and the base of every txpulse exception.

The tree::

    WebSocketError
    ├── ProtocolError            the peer broke RFC 6455 (closeCode, normally 1002)
    │   ├── PayloadTooBig        a frame or message exceeded a limit (1009)
    │   └── InvalidPayload       a text message or close reason is not UTF-8 (1007)
    ├── InvalidState             local misuse: e.g. sending after the close handshake
    ├── HandshakeError           the opening handshake failed (statusCode hint)
    │   ├── InvalidUpgrade       not a WebSocket upgrade, or the wrong version (426)
    │   ├── InvalidOrigin        a browser Origin outside the allow-list (403)
    │   └── NegotiationError     a header that cannot be honoured (400)
    ├── ConnectionRejected       the server answered the handshake with an HTTP error
    │                            (in L{txpulse.client.rejection}: it carries a streaming response)
    └── ConnectionClosed         the connection ended; carries the close code and reason

Peer misbehaviour never raises out of the protocol core: the core fails the
connection and stores the exception (L{txpulse.core.connection.Connection.error}).
Local misuse raises at once.

This module imports only the standard library, so the sans-IO core can use it.
L{txpulse.client.rejection.ConnectionRejected}, which carries the refusal's
response (an C{IResponse} whose body streams), lives with the client;
C{txpulse.exceptions} and C{txpulse} re-export all of them.
"""

from __future__ import annotations

__all__ = [
    "WebSocketError",
    "ProtocolError",
    "PayloadTooBig",
    "InvalidPayload",
    "InvalidState",
    "HandshakeError",
    "InvalidUpgrade",
    "InvalidOrigin",
    "NegotiationError",
    "ConnectionClosed",
]


class WebSocketError(Exception):
    """
    Base class of every txpulse exception.
    """


class ProtocolError(WebSocketError):
    """
    The peer violated RFC 6455.

    @ivar closeCode: the close code the connection was failed with.
    """

    closeCode: int = 1002

    def __init__(self, message: str, closeCode: int | None = None) -> None:
        super().__init__(message)
        if closeCode is not None:
            self.closeCode = closeCode


class PayloadTooBig(ProtocolError):
    """
    A frame, a message or a decompressed message exceeded its size limit
    (RFC 6455 §7.4.1: 1009, "message too big").
    """

    closeCode = 1009


class InvalidPayload(ProtocolError):
    """
    A text message or a close reason is not valid UTF-8 (RFC 6455 §8.1).
    """

    closeCode = 1007


class InvalidState(WebSocketError):
    """
    The local application asked for something the connection's state forbids,
    such as sending a message after the close handshake started.
    """


class HandshakeError(WebSocketError):
    """
    The opening handshake failed.

    @ivar statusCode: the HTTP status the server should answer with.
    @ivar headers: extra response headers the answer should carry, as
        C{(name, value)} pairs (e.g. C{Sec-WebSocket-Version: 13} with a 426).
    """

    statusCode: int = 400

    def __init__(
        self,
        message: str,
        statusCode: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        if statusCode is not None:
            self.statusCode = statusCode
        self.headers = headers


class InvalidUpgrade(HandshakeError):
    """
    The request is not a WebSocket upgrade, or asks for a protocol version
    other than 13 (RFC 6455 §4.4: 426 Upgrade Required).
    """

    statusCode = 426


class InvalidOrigin(HandshakeError):
    """
    A browser sent an C{Origin} outside the server's allow-list (403).
    """

    statusCode = 403


class NegotiationError(HandshakeError):
    """
    A handshake header is malformed or cannot be honoured (400).
    """

    statusCode = 400


class ConnectionClosed(WebSocketError):
    """
    The WebSocket connection ended.

    Passed (wrapped in a L{twisted.python.failure.Failure}) to the
    application's C{connectionLost}.

    @ivar code: the close code the peer sent, C{1005} when its close frame
        carried none, or C{1006} when no close frame arrived at all.
    @ivar reason: the close reason the peer sent.
    @ivar codeSent: the close code this side sent, or C{None}.
    @ivar clean: whether both close frames were exchanged.
    """

    def __init__(
        self,
        code: int,
        reason: str = "",
        codeSent: int | None = None,
        clean: bool = False,
    ) -> None:
        super().__init__(f"WebSocket closed: code {code}" + (f" ({reason})" if reason else ""))
        self.code = code
        self.reason = reason
        self.codeSent = codeSent
        self.clean = clean
