# -*- test-case-name: tests.client.test_cli -*-
"""
C{txpulse-client URL}: a command-line WebSocket client.

Prints every text message it receives on its own line (flushed at once, so
it works in pipelines), a short marked line for binary messages, and sends
each line typed on stdin as a text message.

End of stdin closes the connection with 1000, unless C{--keep-open} or
C{--count N} is given: with C{--count} the session lasts until N messages
have arrived whatever stdin does (C{</dev/null} in cron, CI or systemd), and
a server that closes first, even normally, ends it with status 1.

SIGINT (Ctrl-C) and SIGTERM stop the client quietly: it closes with 1001
(going away), waits for the close handshake (bounded by the close timeout;
a second signal drops the connection at once) and exits 130 for SIGINT,
143 for SIGTERM (128 + the signal's number, as a shell reports it).

Exit status: 0 on a normal end (count reached, stdin ended, server closed
with 1000/1001 when no count was asked for); 1 when the server closed with
an error code, the connection dropped or the server closed before
C{--count} messages; 2 for usage errors (including a bad URL or option);
3 when the connection failed (refused, DNS, timeout); 4 when TLS
verification failed; 5 when the server refused the handshake; 130/143
when stopped by SIGINT/SIGTERM. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn, TypeVar

from OpenSSL import SSL
from service_identity import CertificateError, VerificationError
from twisted.application.internet import backoffPolicy
from twisted.internet import error as netError
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import react
from twisted.python.failure import Failure
from zope.interface import implementer

from ..core.exceptions import ConnectionClosed, NegotiationError
from ..logs.redact import redactText
from ..settings import (
    ConnectionSettings,
    Side,
    addArguments,
    argumentType,
    fromArguments,
    parsePositiveCount,
    parsePositiveSeconds,
)
from .endpoint import ConnectionRejected, HandshakeTimeout, InvalidURL, WebSocketClientEndpoint, parseURL
from .service import ReconnectingWebSocketService

__all__ = ["main", "buildParser", "connectionSettings", "CLI_DEFAULTS"]

EXIT_OK = 0
EXIT_CLOSED_WITH_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECT_FAILED = 3
EXIT_TLS_FAILED = 4
EXIT_REFUSED = 5

#: The signals that stop the client quietly; it exits C{128 + signal}.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_T = TypeVar("_T")

#: Close codes that mean "finished normally".
NORMAL_CODES = frozenset((1000, 1001))

#: The CLI's connection defaults: a client's, with no message size limit
#: (it prints whatever arrives).
CLI_DEFAULTS = ConnectionSettings.defaults(Side.CLIENT).override(maxMessageSize=None)


class CLIError(Exception):
    """
    A failure to report as one line and an exit status.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def buildParser() -> argparse.ArgumentParser:
    """
    The command line's options.
    """
    parser = argparse.ArgumentParser(
        prog="txpulse-client",
        description="Connect to a WebSocket server, print what it sends (one message a line), send lines from stdin.",
        epilog="End of stdin closes with 1000 unless --keep-open or --count is given. "
        "Exit status: 0 ok, 1 closed with an error code (or before --count messages), 2 usage, "
        "3 connection failed, 4 TLS verification failed, 5 handshake refused, 130 SIGINT, 143 SIGTERM.",
    )
    parser.add_argument("url", help="ws:// or wss:// URL (http:// and https:// are taken as ws:// and wss://)")
    parser.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="extra request header (repeatable)"
    )
    parser.add_argument("--origin", help="Origin header to send")
    parser.add_argument(
        "-n",
        "--count",
        type=argumentType(parsePositiveCount),
        metavar="N",
        help="exit 0 after receiving N messages, whatever stdin does (1 if the server closes first)",
    )
    parser.add_argument(
        "--timeout",
        type=argumentType(parsePositiveSeconds),
        default=CLI_DEFAULTS.handshakeTimeout,
        metavar="S",
        help=f"seconds to connect and complete the handshake (default {CLI_DEFAULTS.handshakeTimeout:g})",
    )
    parser.add_argument(
        "--reconnect", action="store_true", help="reconnect with backoff when the connection drops or fails"
    )
    parser.add_argument("--cafile", metavar="PEM", help="trust the CA certificates in this PEM file (wss://)")
    parser.add_argument("--insecure", action="store_true", help="do not verify the server's certificate (testing only)")
    parser.add_argument(
        "--http2",
        nargs="?",
        const="on",
        default="off",
        choices=["on", "auto", "off"],
        help="wss:// over HTTP/2 (RFC 8441): 'on' (the flag alone) fails if the server does not offer it, "
        "'auto' falls back to HTTP/1.1 (default: off)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per message: type, size, time, data")
    parser.add_argument(
        "--keep-open",
        action="store_true",
        help="keep listening after stdin ends (default: close with 1000, unless --count is given)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no status lines on stderr")
    addArguments(
        parser,
        Side.CLIENT,
        CLI_DEFAULTS,
        notes={
            "handshake-timeout": "when not given: --timeout",
            "ping-timeout": "when not given with --ping-interval S: S",
        },
    )
    return parser


def connectionSettings(options: argparse.Namespace) -> ConnectionSettings:
    """
    The connection settings the parsed command line asks for: the flags
    given over L{CLI_DEFAULTS}; C{--timeout} is the handshake's too unless
    C{--handshake-timeout} is given, and C{--ping-interval S} alone drops a
    server silent for S more seconds after the ping.

    @raise ValueError: for settings that do not go together.
    """
    settings = fromArguments(options, Side.CLIENT, CLI_DEFAULTS)
    if not hasattr(options, "handshakeTimeout"):
        settings = settings.override(handshakeTimeout=options.timeout)
    if hasattr(options, "pingInterval") and not hasattr(options, "pingTimeout") and settings.pingInterval:
        settings = settings.override(pingTimeout=settings.pingInterval)
    return settings


#: --http2's values, as C{WebSocketClientEndpoint.new}'s C{http2}.
_HTTP2_MODES: dict[str, bool | str] = {"on": True, "auto": "auto", "off": False}


def _parseHeader(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c in text for c in "\r\n\0"):
        raise CLIError(f"bad --header {text!r}: expected 'Name: value'", EXIT_USAGE)
    return name.strip(), value.strip()


class Output:
    """
    Writes received messages to stdout, one a line, flushed; status and
    error lines to stderr, with credentials redacted (a C{?ws_token=} value
    in the URL, a C{Bearer} key in a header: see L{txpulse.logs.redact}), so a
    terminal, a shared screen or a CI log never shows them.
    """

    def __init__(self, asJSON: bool, quiet: bool) -> None:
        self._json = asJSON
        self._quiet = quiet
        self.brokenPipe = False

    def message(self, data: str | bytes) -> None:
        if self._json:
            record: dict[str, Any] = {
                "type": "text" if isinstance(data, str) else "binary",
                "size": len(data.encode("utf-8") if isinstance(data, str) else data),
                "time": round(time.time(), 6),
            }
            record["data"] = data if isinstance(data, str) else base64.b64encode(data).decode("ascii")
            line = json.dumps(record, ensure_ascii=False)
        elif isinstance(data, str):
            line = data
        else:
            preview = data[:16].hex(" ")
            line = f"[binary {len(data)} bytes: {preview}{' ...' if len(data) > 16 else ''}]"
        self._write(sys.stdout, line)

    def status(self, line: str) -> None:
        """
        An informational line on stderr (suppressed by C{--quiet}).
        """
        if not self._quiet:
            self._write(sys.stderr, redactText(line))

    def error(self, line: str) -> None:
        """
        An error line on stderr (always shown).
        """
        self._write(sys.stderr, redactText(line))

    def _write(self, stream: Any, line: str) -> None:
        if self.brokenPipe:
            return
        try:
            stream.write(line + "\n")
            stream.flush()
        except BrokenPipeError:
            # The reader went away (e.g. `| head -3`): stop writing quietly.
            self.brokenPipe = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())


class _Session:
    """
    The application protocol of one connection, as the CLI drives it.
    """

    def __init__(self, output: Output, count: int | None) -> None:
        self._output = output
        self._count = count
        self.received = 0
        self.transport: Any = None
        self.closed: Deferred[ConnectionClosed] = Deferred()

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def _received(self, data: str | bytes) -> None:
        if self._count is not None and self.received >= self._count:
            return
        self.received += 1
        self._output.message(data)
        if self._output.brokenPipe or (self._count is not None and self.received >= self._count):
            self.transport.loseConnection(1000)

    def textMessageReceived(self, message: str) -> None:
        self._received(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        self._received(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        value = reason.value
        closed = value if isinstance(value, ConnectionClosed) else ConnectionClosed(1006)
        if not self.closed.called:  # it may have been cancelled by a second signal
            self.closed.callback(closed)


@implementer(IHalfCloseableProtocol)
class _StdinLines(Protocol):
    """
    Sends each line from stdin as a text message; EOF closes with 1000
    unless told to keep listening. Half-closeable, so that the end of
    stdin leaves stdout alone.
    """

    def __init__(self, state: _State) -> None:
        self._state = state
        self._buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._state.send(line.rstrip(b"\r").decode("utf-8", "replace"))

    def readConnectionLost(self) -> None:
        if self._buffer:
            self._state.send(self._buffer.decode("utf-8", "replace"))
            self._buffer = b""
        if not self._state.ended:
            self._state.stdinEnded()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.readConnectionLost()


class _State:
    """
    What the stdin reader and the signal handlers need: the current
    session, what to do at EOF, and what the run is waiting for.

    @ivar stopping: the signal that asked the client to stop, if any.
    @ivar waiting: what the run awaits now (a connection attempt, a pause
        before retrying, the end of a session), cancelled to stop it.
    """

    def __init__(self, keepOpen: bool) -> None:
        self.session: _Session | None = None
        self.pending: list[str] = []
        self.keepOpen = keepOpen
        self.ended = False
        self.stopping: int | None = None
        self.waiting: Deferred[Any] | None = None

    async def wait(self, d: Deferred[_T]) -> _T:
        """
        Await C{d}, which L{stop} may cancel.
        """
        self.waiting = d
        try:
            return await d
        finally:
            self.waiting = None

    def stop(self, signum: int) -> None:
        """
        A stop signal arrived: close the session with 1001 (going away) and
        let the close handshake finish; stop waiting for anything else. A
        second signal drops the connection at once.
        """
        transport = self.session.transport if self.session is not None else None
        if self.stopping is not None:
            if transport is not None:
                transport.abortConnection()
            if self.waiting is not None:
                self.waiting.cancel()
            return
        self.stopping = signum
        if transport is not None:
            transport.loseConnection(1001)
        elif self.waiting is not None:
            self.waiting.cancel()

    def installSignalHandlers(self, reactor: Any) -> None:
        """
        Handle L{STOP_SIGNALS} with L{stop} (in the reactor thread), in
        place of the reactor's handlers, which would stop the reactor under
        the open connection.
        """

        def handler(signum: int, frame: FrameType | None) -> None:
            reactor.callFromThread(self.stop, signum)

        for signum in STOP_SIGNALS:
            signal.signal(signum, handler)

    def send(self, line: str) -> None:
        if self.session is not None and self.session.transport is not None:
            self.session.transport.sendTextMessage(line)
        else:
            self.pending.append(line)

    def stdinEnded(self) -> None:
        self.ended = True
        if (
            self.stopping is None
            and not self.keepOpen
            and self.session is not None
            and self.session.transport is not None
        ):
            self.session.transport.loseConnection(1000)

    def attach(self, session: _Session) -> None:
        self.session = session
        if self.stopping is not None:
            session.transport.loseConnection(1001)
            return
        pending, self.pending = self.pending, []
        for line in pending:
            session.transport.sendTextMessage(line)
        if self.ended and not self.keepOpen:
            session.transport.loseConnection(1000)


def _describe(failure: Failure, url: str) -> CLIError:
    """
    Turn a connection failure into one line and an exit status.
    """
    value = failure.value
    if isinstance(value, ConnectionRejected):
        body = value.body.decode("utf-8", "replace").strip()
        detail = f": {body}" if body and len(body) <= 200 and "\n" not in body else ""
        return CLIError(f"handshake refused: HTTP {value.statusCode}{detail}", EXIT_REFUSED)
    if isinstance(value, HandshakeTimeout):
        return CLIError(f"timed out waiting for the WebSocket handshake from {url}", EXIT_CONNECT_FAILED)
    if isinstance(value, NegotiationError):
        return CLIError(f"invalid handshake answer: {value}", EXIT_CONNECT_FAILED)
    if isinstance(value, SSL.Error):
        return CLIError(f"TLS verification failed: {_sslReason(value)}", EXIT_TLS_FAILED)
    if isinstance(value, (VerificationError, CertificateError)):
        return CLIError(f"TLS verification failed: the certificate does not match the host ({value})", EXIT_TLS_FAILED)
    if isinstance(value, netError.DNSLookupError):
        return CLIError(f"cannot resolve host of {url}", EXIT_CONNECT_FAILED)
    if isinstance(value, netError.ConnectionRefusedError):
        return CLIError(f"connection refused: {url}", EXIT_CONNECT_FAILED)
    if isinstance(value, (netError.TimeoutError, netError.UserError)):
        return CLIError(f"timed out connecting to {url}", EXIT_CONNECT_FAILED)
    if isinstance(value, (netError.ConnectError, netError.ConnectionLost, netError.ConnectionDone)):
        return CLIError(f"connection failed: {value.__class__.__name__}", EXIT_CONNECT_FAILED)
    if isinstance(value, OSError):
        return CLIError(f"connection failed: {value.strerror or value}", EXIT_CONNECT_FAILED)
    return CLIError(f"connection failed: {value}", EXIT_CONNECT_FAILED)


def _sslReason(error: SSL.Error) -> str:
    try:
        return "; ".join(str(entry[2]) for entry in error.args[0]) or str(error)
    except (IndexError, TypeError):
        return str(error)


async def _run(reactor: Any, options: argparse.Namespace, output: Output) -> int:
    headers = [_parseHeader(h) for h in options.header]
    try:
        parseURL(options.url)
    except InvalidURL as invalid:
        raise CLIError(str(invalid), EXIT_USAGE) from None
    try:
        settings = connectionSettings(options)
    except ValueError as badOption:
        raise CLIError(f"cannot use the options: {badOption}", EXIT_USAGE) from None
    try:
        endpoint = WebSocketClientEndpoint.new(
            reactor,
            options.url,
            connectTimeout=options.timeout,
            settings=settings,
            headers=headers,
            origin=options.origin,
            caFile=options.cafile,
            insecure=options.insecure,
            http2=_HTTP2_MODES[options.http2],
        )
    except OSError as unreadable:  # only --cafile names a file
        raise CLIError(
            f"--cafile: cannot read {options.cafile}: {unreadable.strerror or unreadable}", EXIT_USAGE
        ) from None
    except ValueError as badOption:
        fromCAFile = options.cafile is not None and str(options.cafile) in str(badOption)
        raise CLIError(f"{'--cafile' if fromCAFile else 'cannot use the options'}: {badOption}", EXIT_USAGE) from None

    if options.reconnect and endpoint.http2:
        raise CLIError("--http2 does not work with --reconnect yet (which reconnects over HTTP/1.1)", EXIT_USAGE)

    from twisted.internet import stdio

    state = _State(options.keep_open or options.count is not None)
    reactor.callWhenRunning(state.installSignalHandlers, reactor)
    stdio.StandardIO(_StdinLines(state), reactor=reactor)
    if options.reconnect:
        return await _runReconnecting(reactor, endpoint, options, output, state)
    session = _Session(output, options.count)
    try:
        await state.wait(ensureDeferred(endpoint.connect(_SessionFactory(session))))
    except Exception:
        failure = Failure()
        if state.stopping is None and isinstance(failure.value, ConnectionRejected):
            # connect() fails on the refusal's head; the line shows its body
            # (bounded by the handshake timeout; a stop signal ends the wait).
            try:
                await state.wait(failure.value.whenBodyRead())
            except CancelledError:
                pass
        if state.stopping is not None:
            return 128 + state.stopping
        raise _describe(failure, options.url) from None
    _connected(output, options, session, state)
    try:
        closed = await state.wait(session.closed)
    except CancelledError:
        closed = ConnectionClosed(1006)
    state.session = None
    ending = _ending(options, output, state, session.received)
    if ending is not None:
        return ending
    description = _closedDescription(closed)
    if options.count is not None:
        raise CLIError(f"{description} after {session.received} of {options.count} messages", EXIT_CLOSED_WITH_ERROR)
    if closed.code in NORMAL_CODES:
        output.status(description)
        return EXIT_OK
    raise CLIError(description, EXIT_CLOSED_WITH_ERROR)


def _connected(output: Output, options: argparse.Namespace, session: _Session, state: _State) -> None:
    """
    A session's WebSocket is open: say so and hand it the stdin lines.
    """
    output.status(
        f"connected to {options.url}"
        + (f" (subprotocol {session.transport.subprotocol})" if session.transport.subprotocol else "")
    )
    state.attach(session)


def _ending(options: argparse.Namespace, output: Output, state: _State, received: int) -> int | None:
    """
    The exit status once a session has closed, if that ends the run
    (stopped by a signal, count reached, stdout gone, stdin ended); C{None}
    if the server closed it.
    """
    if state.stopping is not None:
        return 128 + state.stopping
    if options.count is not None and received >= options.count:
        return EXIT_OK
    if output.brokenPipe:
        return EXIT_OK
    if state.ended and not state.keepOpen:
        return EXIT_OK  # we closed, at the end of stdin
    return None


def _closedDescription(closed: ConnectionClosed) -> str:
    return f"closed by server: {closed.code}" + (f" ({closed.reason})" if closed.reason else "")


async def _runReconnecting(
    reactor: Any, endpoint: WebSocketClientEndpoint, options: argparse.Namespace, output: Output, state: _State
) -> int:
    """
    C{--reconnect}: run the sessions on L{ReconnectingWebSocketService} and
    its retry policy, one status line per failed attempt or lost connection
    (from its C{onRetry} hook), until the run ends as L{_ending} says.
    """
    received = 0
    finished: Deferred[int] = Deferred()
    lost: list[ConnectionClosed] = []  # the session that just closed, for the next status line

    def finish(status: int) -> None:
        # Leave the service's connection-lost transition before stopping it.
        def end() -> None:
            if not finished.called:
                finished.callback(status)

        reactor.callLater(0, end)

    def sessionClosed(closed: ConnectionClosed, session: _Session) -> None:
        nonlocal received
        received += session.received
        state.session = None
        ending = _ending(options, output, state, received)
        if ending is None:
            lost.append(closed)
        else:
            finish(ending)

    class Sessions:
        def buildProtocol(self, url: str) -> _Session:
            session = _Session(output, None if options.count is None else options.count - received)
            session.closed.addCallback(sessionClosed, session)
            return session

    def opened(session: _Session) -> None:
        _connected(output, options, session, state)

    def retrying(attempt: int, reason: Failure, delay: float) -> None:
        if finished.called or state.stopping is not None:
            return
        if lost:
            output.status(f"{_closedDescription(lost.pop())}; reconnecting in {delay:.1f}s")
        else:
            output.status(f"attempt {attempt}: {_describe(reason, options.url)}; retrying in {delay:.1f}s")

    service = ReconnectingWebSocketService(
        endpoint,
        Sessions(),
        # Quick first retries (0.5 s, 1 s, 2 s ... up to 30 s, plus up to
        # 1 s of jitter): someone watching a terminal is waiting.
        retryPolicy=backoffPolicy(initialDelay=0.25, maxDelay=30.0, factor=2.0),
        clock=reactor,
        prepareConnection=opened,
        onRetry=retrying,
    )
    service.startService()
    try:
        status = await state.wait(finished)
    except CancelledError:
        status = 128 + (state.stopping or 0)
    await service.stopService()
    return status


class _SessionFactory:
    def __init__(self, session: _Session) -> None:
        self._session = session

    def buildProtocol(self, url: str) -> _Session:
        return self._session


async def _main(reactor: Any, options: argparse.Namespace, output: Output) -> None:
    """
    Run the client under L{react}: a status other than 0 leaves as
    C{SystemExit}, every failure as one line on stderr.
    """
    try:
        status = await _run(reactor, options, output)
    except CLIError as problem:
        output.error(f"txpulse-client: {problem}")
        status = problem.status
    except Exception as unexpected:
        output.error(f"txpulse-client: unexpected error: {unexpected}")
        status = EXIT_CLOSED_WITH_ERROR
    if status:
        raise SystemExit(status)


def _exitAtOnce(signum: int, frame: FrameType | None) -> None:
    """
    A stop signal before the reactor runs: exit C{128 + signum}, quietly.
    """
    os._exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """
    The C{txpulse-client} console script.
    """
    # Until the reactor runs (and L{_State.installSignalHandlers} takes
    # over) there is no connection to close: a stop signal just exits.
    for signum in STOP_SIGNALS:
        signal.signal(signum, _exitAtOnce)
    options = buildParser().parse_args(argv)
    output = Output(options.json, options.quiet)
    react(lambda reactor: ensureDeferred(_main(reactor, options, output)))


if __name__ == "__main__":  # pragma: no cover
    main()
