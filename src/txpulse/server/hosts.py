# -*- test-case-name: tests.server.test_site -*-
"""
L{AllowedHosts}: the C{Host} values a L{txpulse.WebSocketSite} answers to
(its C{allowedHosts}, the plugin's C{--allowed-host}), a defence against DNS
rebinding: a page on an attacker's name that resolves to this server's
address sends that name as C{Host}, and is refused.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["AllowedHosts"]


class AllowedHosts:
    """
    The C{Host} values a site answers to: names (any port) and name:port
    pairs, compared without case and without a trailing dot.

    @raise ValueError: (when built) if an entry is not C{name} or
        C{name:port}, or there is none.
    """

    def __init__(self, hosts: Iterable[str]) -> None:
        self._names: set[str] = set()
        self._pairs: set[tuple[str, str]] = set()
        for entry in hosts:
            name, port = _splitHost(entry.strip())
            if not name:
                raise ValueError(f"not a host or host:port: {entry!r}")
            if port is None:
                self._names.add(name)
            else:
                self._pairs.add((name, port))
        if not self._names and not self._pairs:
            raise ValueError("allowedHosts must name at least one host")

    def matches(self, value: bytes, secure: bool) -> bool:
        """
        Whether the C{Host} header C{value} names an allowed host (without a
        port, the scheme's default port is meant: RFC 9110 §7.2).
        """
        name, port = _splitHost(value.decode("latin-1").strip())
        if name in self._names:
            return True
        if port is None:
            port = "443" if secure else "80"
        return (name, port) in self._pairs


def _splitHost(value: str) -> tuple[str, str | None]:
    """
    C{host[:port]} (with C{[v6]} literals) as a lowercase name without a
    trailing dot, and the port (C{None} when absent).
    """
    value = value.lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return "", None
        name, rest = value[: end + 1], value[end + 1 :]
        if not rest:
            return name, None
        if not rest.startswith(":") or not rest[1:].isdigit():
            return "", None
        return name, rest[1:].lstrip("0") or "0"
    name, colon, port = value.partition(":")
    name = name.rstrip(".")
    if not colon:
        return name, None
    if not port.isdigit():
        return "", None
    return name, port.lstrip("0") or "0"
