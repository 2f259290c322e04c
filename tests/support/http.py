"""
An in-memory HTTP connection to a C{twisted.web} L{Site}: raw requests in,
the response head and what followed it out.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.web.server import Site

from .transports import CountingTransport


class Client:
    """
    An in-memory HTTP connection to a Site.
    """

    def __init__(self, site: Site) -> None:
        self.channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
        self.transport = CountingTransport()
        self.channel.makeConnection(self.transport)

    def request(self, data: bytes) -> tuple[bytes, bytes]:
        self.channel.dataReceived(data)
        head, _, rest = self.transport.value().partition(b"\r\n\r\n")
        return head, rest
