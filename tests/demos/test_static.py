"""
The built-in site's files: every page has an icon (so a browser logs no
C{404} for C{/favicon.ico}), served with its content type.
"""

from __future__ import annotations

import re
from importlib.resources import files

import pytest
from twisted.web.server import Site

from txpulse.server.files import builtinSite

from ..support.http import Client

STATIC = files("txpulse.demos") / "static"


def head(path: str) -> bytes:
    """
    The response head of C{HEAD path} on the built-in site, in memory (the
    head of a C{GET}, without the body a file producer would write later).
    """
    head, _ = Client(Site(builtinSite())).request(f"HEAD {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    return head


@pytest.mark.parametrize("page", ["index.html", "chat.html"])
def test_pages_link_an_icon_that_exists(page: str) -> None:
    """
    Each page links C{rel="icon"} to a file of the site (without one, a
    browser asks for C{/favicon.ico}).
    """
    html = (STATIC / page).read_text(encoding="utf-8")
    links = re.findall(r'<link rel="icon" href="([^"]+)" type="([^"]+)">', html)
    assert links == [("favicon.svg", "image/svg+xml")]
    assert (STATIC / "favicon.svg").is_file()


@pytest.mark.parametrize(
    ("path", "contentType"),
    [("/favicon.svg", b"image/svg+xml"), ("/favicon.ico", b"image/vnd.microsoft.icon")],
)
def test_icons_are_served_with_their_type(path: str, contentType: bytes) -> None:
    """
    The linked SVG icon and C{/favicon.ico} (which browsers ask for on pages
    without a link, such as a bare C{/ws}) answer 200 with their own content
    type, whatever the host's C{/etc/mime.types} says.
    """
    answer = head(path)
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer
    assert f"content-type: {contentType.decode()}".encode() in answer.lower(), answer


def test_favicon_ico_is_an_icon() -> None:
    """
    C{favicon.ico} is an ICO container (reserved 0, type 1) with one image.
    """
    data = (STATIC / "favicon.ico").read_bytes()
    assert data[:6] == b"\x00\x00\x01\x00\x01\x00"
    assert b"\x89PNG" in data
