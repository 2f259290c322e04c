"""
A blocking HTTP/1.1 client for attacks on a live server: many requests over
one keep-alive connection (reconnecting when the server closes it), as a
brute-force client sends them, recording each answer's status and headers.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from .requests import SAMPLE_KEY, upgrade_request

#: Seconds to wait for any one answer.
ANSWER_TIMEOUT = 5.0


@dataclass
class Answer:
    """
    One response: its status, its headers (lower-case names) and body.
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def upgrade(path: str, host: str = "127.0.0.1", **headers: str) -> bytes:
    """
    A WebSocket upgrade request for C{path} with extra C{headers}
    (underscores in names become dashes), with RFC 6455's sample key.
    """
    return upgrade_request(path, host=host, key=SAMPLE_KEY, **headers)


def get(path: str, host: str = "127.0.0.1", **headers: str) -> bytes:
    """
    A plain C{GET} request for C{path} with extra C{headers}.
    """
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class KeepAliveClient:
    """
    Sends requests one after the other on one connection to
    C{127.0.0.1:port}, opening a new one whenever the server closes it. Only
    for requests that are refused (a C{101} would switch protocols).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.connections = 0

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=ANSWER_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buffer = sock, b""
        self.connections += 1
        return sock

    def _read(self, sock: socket.socket, until: int | bytes) -> bytes:
        while (len(self.buffer) < until) if isinstance(until, int) else (until not in self.buffer):
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError("closed by the server")
            self.buffer += data
        return self.buffer

    def send(self, request: bytes) -> Answer:
        """
        Send C{request} and read its answer (on a new connection if the
        server closed the last one).
        """
        for attempt in (1, 2):
            sock = self.sock or self._connect()
            try:
                sock.sendall(request)
                self._read(sock, b"\r\n\r\n")
                head, _, rest = self.buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                self.buffer = rest
                self._read(sock, length)
                body, self.buffer = self.buffer[:length], self.buffer[length:]
                if "close" in headers.get("connection", "").lower():
                    self.close()
                return Answer(int(lines[0].split(" ")[1]), headers, body)
            except (ConnectionError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def timed(port: int, requests: Iterable[bytes]) -> tuple[list[Answer], float]:
    """
    Send every request over one keep-alive client; the answers and the mean
    seconds per request.
    """
    client = KeepAliveClient(port)
    answers = []
    started = time.perf_counter()
    try:
        for request in requests:
            answers.append(client.send(request))
    finally:
        client.close()
    return answers, (time.perf_counter() - started) / max(1, len(answers))
