"""
Hostile requests against the static site of the real plugin (C{twistd -n
txpulse}, in a subprocess on 127.0.0.1): with C{--path DIR}, and the
built-in site.

Before L{txpulse.server.files}, C{twisted.web.static.File} served these: directory
listings, C{/etc/passwd} through a symbolic link, unknown extensions as
C{text/html}, no C{nosniff} and no page policy, a 500 for C{/%00}, and for
1,000 byte ranges of a 3 KB file a 4.3 MB answer that stalled half-way on a
logged C{ValueError}. A well-behaved WebSocket client on C{/echo} of the same
server must see no disruption.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from txpulse.server.files import BUILTIN_PAGE_POLICY

from ..support.processes import TwistdServer

#: The one file the range attacks ask for (3,000 bytes, all different).
THREE_KB = bytes(range(256)) * 11 + bytes(184)

RPY = """
from twisted.web.static import Data
resource = Data(b"from a script", "text/plain")
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """
    A directory to serve, with the traps an attacker looks for: links out of
    the tree, a dotfile, a file of an unknown type, a directory without an
    index, an C{.rpy} script.
    """
    root = tmp_path_factory.mktemp("site")
    (root / "a.txt").write_text("plain text\n")
    (root / "three.bin").write_bytes(THREE_KB)
    (root / "notes.weird").write_text("<script>alert(1)</script>\n")
    (root / ".env").write_text("SECRET=1\n")
    (root / "hello.rpy").write_text(RPY)
    (root / "listed").mkdir()
    (root / "listed" / "private-name.txt").write_text("x\n")
    (root / "indexed").mkdir()
    (root / "indexed" / "index.html").write_text("<p>the index\n")
    (root / "inside-link.txt").symlink_to(root / "a.txt")
    (root / "passwd").symlink_to("/etc/passwd")
    (root / "etc").symlink_to("/etc")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "evil.rpy").write_text(RPY)
    (root / "evil.rpy").symlink_to(outside / "evil.rpy")
    return root


@pytest.fixture(scope="module")
def pathServer(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwistdServer]:
    """
    C{twistd -n txpulse --path TREE}.
    """
    with TwistdServer(tmp_path_factory.mktemp("twistd") / "twistd.log", "--path", str(tree)) as server:
        yield server


@pytest.fixture(scope="module")
def builtinServer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwistdServer]:
    """
    C{twistd -n txpulse} with its built-in site.
    """
    with TwistdServer(tmp_path_factory.mktemp("twistd") / "twistd.log") as server:
        yield server


def get(server: TwistdServer, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """
    One C{GET} of C{path} sent as is (no quoting); the status, the headers
    (lower-cased names) and the body.
    """
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        connection.close()


def echoRoundTrip(server: TwistdServer) -> None:
    """
    A well-behaved client: open C{/echo}, get a text echoed, close with 1000.
    """
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{server.port}/echo", proxy=None, open_timeout=5, close_timeout=5) as ws:
        ws.send("still served")
        assert ws.recv(timeout=5) == "still served"


def test_directories_are_not_listed(pathServer: TwistdServer) -> None:
    """
    A directory without an index file is 404 (its file names are not
    shown); one with an index file serves it.
    """
    for path in ("/", "/listed/"):
        status, headers, body = get(pathServer, path)
        assert status == 404, path
        assert b"private-name" not in body and b"a.txt" not in body
        assert headers["x-content-type-options"] == "nosniff"
    status, _, body = get(pathServer, "/indexed/")
    assert (status, body) == (200, b"<p>the index\n")


def test_links_out_of_the_tree_are_refused(pathServer: TwistdServer) -> None:
    """
    A symbolic link to a file or a directory outside the root is 404 (the
    link to C{/etc/passwd} served it before), and so is a link to an C{.rpy}
    script outside (it is not run); a link inside the tree is followed.
    """
    for path in ("/passwd", "/etc/passwd", "/etc/hostname", "/evil.rpy"):
        status, _, body = get(pathServer, path)
        assert status == 404, path
        assert b"root:" not in body and b"from a script" not in body
    assert get(pathServer, "/inside-link.txt")[:3:2] == (200, b"plain text\n")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/%00", 400),
        ("/a.txt%00.html", 400),
        ("/a%01b", 400),
        ("/%ff", 404),
        ("/.env", 404),
        ("/%2e%2e/%2e%2e/etc/passwd", 404),
        ("/listed/..%2f..%2f..%2fetc%2fpasswd", 404),
        ("/..%5c..%5cetc%5cpasswd", 404),
        ("/" + "x" * 300, 404),
    ],
)
def test_odd_paths_are_refused_not_failed(pathServer: TwistdServer, path: str, expected: int) -> None:
    """
    NUL and control characters are 400, traversal attempts, dotfiles, names
    that are not UTF-8 or too long are 404: never a 500, and the refusal is
    a plain text body with C{nosniff}.
    """
    status, headers, body = get(pathServer, path)
    assert status == expected
    assert headers["content-type"].startswith("text/plain")
    assert headers["x-content-type-options"] == "nosniff"
    assert b"SECRET" not in body and b"root:" not in body


def test_unknown_types_are_not_html(pathServer: TwistdServer) -> None:
    """
    A file whose extension has no known type is served as
    C{application/octet-stream} with C{nosniff}, so a browser does not run
    what it contains as a page.
    """
    status, headers, body = get(pathServer, "/notes.weird")
    assert status == 200 and body.startswith(b"<script>")
    assert headers["content-type"] == "application/octet-stream"
    assert headers["x-content-type-options"] == "nosniff"
    assert get(pathServer, "/a.txt")[1]["content-type"].startswith("text/plain")


def test_rpy_scripts_still_run(pathServer: TwistdServer) -> None:
    """
    C{.rpy} files inside the root run, as with C{twist web --path}.
    """
    assert get(pathServer, "/hello.rpy")[::2] == (200, b"from a script")


def test_many_ranges_get_the_file_once(pathServer: TwistdServer) -> None:
    """
    1,000 ranges of a 3 KB file (a 4.3 MB multipart answer and a stalled
    connection before) get the whole file with 200, at once; so do two
    overlapping ranges and a malformed header; one range is still 206 and
    an unsatisfiable one 416. Nothing is logged as an error, and a
    WebSocket client of the same server is served before and after.
    """
    echoRoundTrip(pathServer)
    many = "bytes=" + ",".join("0-2999" for _ in range(1000))
    for header in (many, "bytes=0-99,50-149", "bytes=0-1,2-3", "bytes=x-y", "bytes=" + "9" * 200 + "-"):
        status, headers, body = get(pathServer, "/three.bin", Range=header)
        assert (status, len(body)) == (200, len(THREE_KB)), header[:40]
        assert body == THREE_KB and "content-range" not in headers
    status, headers, body = get(pathServer, "/three.bin", Range="bytes=10-19")
    assert (status, body, headers["content-range"]) == (206, THREE_KB[10:20], "bytes 10-19/3000")
    assert get(pathServer, "/three.bin", Range="bytes=-5")[::2] == (206, THREE_KB[-5:])
    assert get(pathServer, "/three.bin", Range="bytes=5000-")[0] == 416
    echoRoundTrip(pathServer)
    log = pathServer.output()
    assert "ValueError" not in log and "Traceback" not in log


def test_builtin_pages_carry_a_policy(builtinServer: TwistdServer) -> None:
    """
    The built-in pages and their scripts come with C{nosniff}, the page
    C{Content-Security-Policy} (WebSockets to the server allowed, framing
    refused) and C{X-Frame-Options: DENY}; scripts are served as JavaScript.
    """
    for path, contentType in (
        ("/", "text/html"),
        ("/chat.html", "text/html"),
        ("/index.js", "text/javascript"),
        ("/txpulse.js", "text/javascript"),
        ("/style.css", "text/css"),
    ):
        status, headers, _ = get(builtinServer, path)
        assert status == 200, path
        assert headers["content-type"].startswith(contentType), path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-security-policy"] == BUILTIN_PAGE_POLICY
        assert headers["x-frame-options"] == "DENY"
    assert "connect-src 'self' ws: wss:" in BUILTIN_PAGE_POLICY
    assert "frame-ancestors 'none'" in BUILTIN_PAGE_POLICY


def test_builtin_pages_need_nothing_the_policy_forbids() -> None:
    """
    The built-in HTML has no inline script, no inline event handler and no
    C{style} attribute, which C{script-src 'self'; style-src 'self'} would
    block (the Chromium tests load the pages under that policy).
    """
    from importlib.resources import files

    for name in ("index.html", "chat.html"):
        html = (files("txpulse.demos") / "static" / name).read_text(encoding="utf-8")
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts and all(" src=" in tag for tag in scripts), name
        assert not re.search(r"\son[a-z]+\s*=", html), name
        assert not re.search(r"\sstyle\s*=", html) and "<style" not in html, name
