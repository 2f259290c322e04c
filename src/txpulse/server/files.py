# -*- test-case-name: tests.hardening.test_hostile_static -*-
"""
Static files served safely: the built-in site and C{twistd txpulse --path}.

L{StaticFiles} is C{twisted.web.static.File} (its rendering, C{Last-Modified}
and C{HEAD} handling, its producers, its C{processors} such as C{.rpy}
scripts) with what a public server needs and C{File} does not do:

  - B{No directory listings.} A directory answers with its index file
    (C{indexNames}) or 404.
  - B{Nothing outside the root.} Every path is resolved (symbolic links
    included) and refused with 404 unless it lands inside the root directory;
    names starting with a dot (C{.git}, C{.env}; C{.well-known} excepted),
    C{.}/C{..}, names with a C{/} or C{\\} (a C{%2F} in the URL), names that
    are not UTF-8 and names longer than 255 bytes are 404, and control
    characters (C{%00} included) are 400; only regular files and directories
    are served (never a FIFO or a device).
  - B{No guessing of types.} A file whose extension has no known type is
    C{application/octet-stream}, and every response of this resource
    (refusals too) carries C{X-Content-Type-Options: nosniff}.
  - B{Page policy.} With C{contentSecurityPolicy} (the built-in site:
    L{BUILTIN_PAGE_POLICY}) every file response carries that
    C{Content-Security-Policy} and C{X-Frame-Options: DENY}.
  - B{One byte range at most.} A C{Range} header naming one range is served
    as C{File} does (206, or 416 when it is unsatisfiable); anything else
    (several ranges, a malformed or overlong header) is ignored and the whole
    file is sent with 200, which RFC 9110 §14.2 allows. Twisted's
    multi-range producer turns 1,000 ranges of a 3 KB file into a 4.3 MB
    answer and can fail half-way with a C{ValueError} (it reads a negative
    length when part boundaries push a chunk past its buffer size).

Refusals are short C{text/plain} bodies that repeat nothing of the request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from importlib.resources import files
from typing import Any

from twisted.web import http
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.static import File, StaticProducer

__all__ = ["BUILTIN_PAGE_POLICY", "StaticFiles", "builtinSite"]

#: The C{Content-Security-Policy} of the built-in pages: scripts, styles and
#: everything else only from this server, WebSockets (C{ws:}/C{wss:}) and
#: C{fetch} (the token endpoint) to it, no plugins, no C{<base>}, and no
#: framing by any page (C{frame-ancestors}; C{X-Frame-Options: DENY} says the
#: same to older browsers). The pages have no inline script or style
#: attribute; C{chat.js} sets a CSS custom property through the CSSOM, which
#: C{style-src} does not govern.
BUILTIN_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

#: Types that must not depend on the host's C{/etc/mime.types}: with
#: C{nosniff}, a browser runs a module script only if it is served as
#: JavaScript, and applies a style sheet only if it is C{text/css}.
_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".txt": "text/plain",
    ".svg": "image/svg+xml",
    ".ico": "image/vnd.microsoft.icon",
    ".wasm": "application/wasm",
}

#: One byte range, the only form honoured: C{bytes=FIRST-[LAST]} or
#: C{bytes=-SUFFIX}, at most 40 digits a side.
_SINGLE_RANGE = re.compile(rb"bytes=(?:\d{1,40}-\d{0,40}|-\d{1,40})")

#: Bytes a path segment must not contain: ASCII control characters.
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def _secure(request: IRequest) -> None:
    # RFC 9110 §8.3 types only: the browser must not sniff a script or a
    # page out of a file served as something else.
    request.setHeader(b"x-content-type-options", b"nosniff")


class _Refusal(Resource):
    """
    A short plain-text error (404, 403, 400) that repeats nothing of the
    request.
    """

    isLeaf = True

    def __init__(self, code: int, text: str) -> None:
        super().__init__()
        self._code = code
        self._body = text.encode("ascii") + b"\n"

    def render(self, request: IRequest) -> bytes:
        request.setResponseCode(self._code)
        _secure(request)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"content-length", b"%d" % len(self._body))
        return b"" if request.method == b"HEAD" else self._body

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        return self


_NOT_FOUND = _Refusal(http.NOT_FOUND, "Not found.")
_FORBIDDEN = _Refusal(http.FORBIDDEN, "Forbidden.")
_BAD_PATH = _Refusal(http.BAD_REQUEST, "Bad request: control character in the path.")


def _segmentRefusal(segment: bytes) -> Resource | None:
    """
    The refusal for a path segment that names nothing this resource serves,
    or L{None} when the name may be looked up.
    """
    if _CONTROL.search(segment):
        return _BAD_PATH
    if (
        len(segment) > 255
        or b"/" in segment
        or b"\\" in segment
        or (segment.startswith(b".") and segment != b".well-known")
    ):
        return _NOT_FOUND
    try:
        segment.decode("utf-8")
    except UnicodeDecodeError:
        return _NOT_FOUND
    return None


class StaticFiles(File):
    """
    The files under one directory, served as the module docstring says.

    Every L{StaticFiles} below the root (C{createSimilarFile}) shares its
    root, index names, processors and policy.
    """

    # File's own refusals are HTML pages of private classes; ours are plain
    # text with nosniff.
    childNotFound = _NOT_FOUND  # type: ignore[assignment]
    forbidden = _FORBIDDEN  # type: ignore[assignment]
    contentTypes = {**File.contentTypes, **_TYPES}

    def __init__(
        self,
        path: str,
        *,
        contentSecurityPolicy: str | None = None,
        processors: dict[str, Callable[[str, Any], Any]] | None = None,
        indexNames: Sequence[str] = ("index.html",),
        root: str | None = None,
        registry: Any = None,
    ) -> None:
        """
        @param path: the directory (or, below the root, the file) to serve.
        @param contentSecurityPolicy: sent, with C{X-Frame-Options: DENY},
            on every file response; L{None} for neither (a user's own site,
            whose pages may need inline scripts).
        @param processors: extension to resource factory, e.g.
            C{{".rpy": ResourceScript}} (as C{twist web --path} has); a
            processed file must lie inside the root like any other.
        @param indexNames: the files a directory answers with, first found
            wins; a directory without one is 404.
        @param root: the directory nothing may be served from outside of
            (default: C{path}); symbolic links are resolved before the check.
        """
        super().__init__(path, "application/octet-stream", (), registry)
        self._root = os.path.realpath(path if root is None else root)
        self._policy = None if contentSecurityPolicy is None else contentSecurityPolicy.encode("ascii")
        self.processors = dict(processors or {})
        self.indexNames = list(indexNames)

    def createSimilarFile(self, path: str) -> StaticFiles:
        return StaticFiles(
            path,
            contentSecurityPolicy=None if self._policy is None else self._policy.decode("ascii"),
            processors=self.processors,
            indexNames=self.indexNames,
            root=self._root,
            registry=self.registry,
        )

    def _inside(self, path: str) -> bool:
        """
        Whether C{path}, resolved, is the root or lies below it.
        """
        real = os.path.realpath(path)
        try:
            return os.path.commonpath([self._root, real]) == self._root
        except ValueError:
            return False

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        """
        The file or directory named C{path} in this directory (the index
        file for an empty segment), or a refusal.
        """
        refusal = _segmentRefusal(path)
        if refusal is not None:
            return refusal
        self.restat(reraise=False)
        if not self.isdir():
            return _NOT_FOUND
        if path:
            target = self.child(path.decode("utf-8"))
        else:
            found = self.childSearchPreauth(*self.indexNames)
            if found is None:
                return _NOT_FOUND  # no directory listings
            target = found
        # Resolve links first: a link may point anywhere, and only what lands
        # inside the root (a regular file or a directory) is served.
        if not self._inside(target.path) or not (target.isfile() or target.isdir()):
            return _NOT_FOUND
        processor = self.processors.get(target.splitext()[1])
        if processor is not None:
            return IResource(processor(target.path, self.registry))
        return self.createSimilarFile(target.path)

    def directoryListing(self) -> Resource:
        """
        No listings: 404.
        """
        return _NOT_FOUND

    def render(self, request: IRequest) -> Any:
        """
        Set the security headers, then render as L{File} does (C{GET},
        C{HEAD}; other methods are 405).
        """
        _secure(request)
        if self._policy is not None:
            request.setHeader(b"content-security-policy", self._policy)
            request.setHeader(b"x-frame-options", b"DENY")
        if not self._inside(self.path):
            return _NOT_FOUND.render(request)
        return super().render(request)

    def makeProducer(self, request: IRequest, fileForReading: Any) -> StaticProducer:
        """
        Honour a single byte range; ignore any other C{Range} header (the
        whole file, 200).
        """
        byteRange = request.getHeader(b"range")
        if byteRange is not None and not _SINGLE_RANGE.fullmatch(byteRange.replace(b" ", b"")):
            request.requestHeaders.removeHeader(b"range")
        producer: StaticProducer = super().makeProducer(request, fileForReading)
        return producer


def builtinSite() -> StaticFiles:
    """
    The site shipped in C{txpulse/demos/static}, with L{BUILTIN_PAGE_POLICY}.
    """
    return StaticFiles(str(files("txpulse.demos") / "static"), contentSecurityPolicy=BUILTIN_PAGE_POLICY)
