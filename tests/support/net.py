"""
Loopback ports: finding a free one, and telling whether a server listens
on one.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """
    A loopback TCP port nobody listens on (bound, then released): for a
    server that must listen on a known port, or a connection to be refused.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def free_ports(count: int) -> list[int]:
    """
    C{count} distinct free loopback ports (all bound at once, then
    released), for a server that listens on several.
    """
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def accepts(port: int, timeout: float = 0.5) -> bool:
    """
    Whether something accepts TCP connections on C{127.0.0.1:port}.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False
