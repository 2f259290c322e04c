"""
A TCP proxy on 127.0.0.1 whose connections a test can cut while the server
behind it keeps running: what a flaky network does to a browser's
WebSocket, without restarting the server (which would lose its history).
Plain sockets and threads, so it works beside Playwright's synchronous API
and a server in a subprocess.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class CutProxy:
    """
    Forwards every connection to C{127.0.0.1:upstream}. L{cut} drops every
    forwarded connection at once and refuses new ones (accepted, then
    closed) until L{restore}.

    @ivar port: the port it listens on.
    @ivar accepted: connections forwarded so far.
    """

    def __init__(self, upstream: int) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._up = True
        self._closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True, name="cutproxy-accept").start()

    def url(self, path: str = "") -> str:
        """
        The C{http://} URL of C{path} through the proxy.
        """
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def cut(self) -> None:
        """
        Drop every forwarded connection (both sides) and refuse new ones.
        """
        with self._lock:
            self._up = False
            sockets, self._open = self._open, []
        for sock in sockets:
            _drop(sock)

    def restore(self) -> None:
        """
        Forward new connections again.
        """
        with self._lock:
            self._up = True

    def close(self) -> None:
        """
        Stop listening and drop everything.
        """
        self._closed = True
        self.cut()
        _drop(self._listener)

    def __enter__(self) -> CutProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                up = self._up
            if not up:
                _drop(client)
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self._upstream), timeout=5)
                server.settimeout(None)
            except OSError:
                _drop(client)
                continue
            with self._lock:
                if not self._up:
                    _drop(client)
                    _drop(server)
                    continue
                self._open += [client, server]
                self.accepted += 1
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, target), daemon=True, name="cutproxy-pipe").start()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    _drop(source)
    _drop(target)


def _drop(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
