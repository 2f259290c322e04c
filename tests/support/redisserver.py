"""
A real C{redis-server} for the tests (L{RedisServer}): on a loopback port,
its data in a directory of the test's, with or without persistence; it can
be killed, paused, restarted on the same port, and looked at from the
outside with a tiny blocking RESP client (L{RedisServer.command}). The
Redis broker suite (C{tests/redis/conftest.py}) and the deployment cluster
(L{tests.support.cluster}) both run this one.

C{scripts/install-redis.sh} installs C{redis-server} (C{TXPULSE_REDIS_SERVER}
overrides C{PATH}); without it the test is skipped, or fails when C{CI} is
set.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

from .executables import executable
from .net import free_port
from .processes import ServerProcess

__all__ = ["RedisServer", "RedisError"]

#: Seconds Redis has to start, or to stop after SIGTERM, by default; also
#: how long L{RedisServer.command} waits for a reply.
TIMEOUT = 15.0


class RedisError(Exception):
    """
    An error reply from Redis.
    """


def _reply(stream: Any) -> Any:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("Redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2].decode()
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_reply(stream) for _ in range(size)]
    raise ConnectionError(f"not a RESP reply: {line!r}")


class RedisServer(ServerProcess):
    """
    A C{redis-server} on 127.0.0.1, its data in C{directory}.

    Persistence: C{appendonly=True} (or L{persist}) keeps every write in an
    append-only file (fsynced C{appendfsync}: C{"always"}, C{"everysec"} or
    C{"no"}), so a L{restart} (SIGTERM, which flushes it) or even a L{kill}
    (losing at most the last C{everysec} second) comes back with the data;
    C{appendonly=False} (and no RDB snapshots) comes back empty, as a Redis
    that lost its data does.

    @ivar port: the loopback port it listens on (a free one by default).
    @ivar url: the C{redis://} URL of its database 0 (for C{--broker}, or
        L{txpulse.pubsub.broker.redis.RedisBroker.fromURL}).
    """

    timeout = TIMEOUT

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        timeout: float | None = None,
    ) -> None:
        """
        @param timeout: seconds to start, to stop, and to answer a
            L{command} (default: L{TIMEOUT}).
        """
        directory.mkdir(parents=True, exist_ok=True)
        if timeout is not None:
            self.timeout = timeout
        self.port = port if port is not None else free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.appendonly = appendonly
        argv = [
            executable("redis-server", env="TXPULSE_REDIS_SERVER"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if appendonly else "no",
            "--appendfsync", appendfsync,
            "--dir", str(directory),
        ]  # fmt: skip
        super().__init__(argv, directory / "redis.log", [self.port])

    def persist(self) -> None:
        """
        From the next L{start} on, keep the data in an append-only file,
        synced on every write (C{appendfsync always}), so that a killed
        server comes back with all of it.
        """
        self.appendonly = True
        self.argv[self.argv.index("--appendonly") + 1] = "yes"
        self.argv[self.argv.index("--appendfsync") + 1] = "always"

    def ready(self) -> bool:
        """
        Whether it answers C{PING} (and so has loaded its append-only file).
        """
        try:
            return bool(self.command("PING") == "PONG")
        except (OSError, RedisError):
            return False

    def kill(self) -> None:
        """
        SIGKILL: Redis goes away without a goodbye (after a SIGCONT, in case
        it was paused with L{pause}; idempotent).
        """
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
        super().kill()

    def pause(self) -> None:
        """
        SIGSTOP: its connections stay open, nothing answers.
        """
        assert self.process is not None, "not running"
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """
        SIGCONT after L{pause}.
        """
        assert self.process is not None, "not running"
        os.kill(self.process.pid, signal.SIGCONT)

    def command(self, *args: str) -> Any:
        """
        Run one command on a fresh connection; its decoded reply (a blocking
        call: Redis on loopback answers in microseconds).

        @raise RedisError: for an error reply.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as sock:
            request = b"*%d\r\n" % len(args)
            for arg in args:
                encoded = arg.encode()
                request += b"$%d\r\n%s\r\n" % (len(encoded), encoded)
            sock.sendall(request)
            with sock.makefile("rb") as stream:
                return _reply(stream)

    def channels(self, pattern: str = "txpulse:*") -> set[str]:
        """
        C{PUBSUB CHANNELS pattern}: the channels someone is subscribed to.
        """
        return set(self.command("PUBSUB", "CHANNELS", pattern))

    def clients(self) -> list[dict[str, str]]:
        """
        C{CLIENT LIST}, one dict of fields per connection.
        """
        return [
            dict(field.split("=", 1) for field in line.split(" ") if "=" in field)
            for line in self.command("CLIENT", "LIST").splitlines()
        ]
