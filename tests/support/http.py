"""
An in-memory HTTP connection to a C{twisted.web} L{Site}: raw requests in,
the response head and what followed it out; and L{Kept}, a resource that
keeps the requests it rendered, to look at after the response.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

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


class Kept(Resource):
    """
    Answers C{ok} and keeps every request it rendered.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []

    def render_GET(self, request: Request) -> bytes:
        self.requests.append(request)
        return b"ok"
