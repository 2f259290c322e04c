# -*- test-case-name: tests.core.test_deflate -*-
"""
permessage-deflate (RFC 7692): negotiation on both sides and the codec.

Negotiation
===========

The client offers, the server picks the first offer it can honour and
answers with the parameters in force:

  - C{server_no_context_takeover} / C{client_no_context_takeover}: the
    server's (client's) compressor starts afresh for every message.
  - C{server_max_window_bits=N} / C{client_max_window_bits[=N]}: the LZ77
    window the server's (client's) compressor may use, 8 to 15.

zlib cannot compress with an 8-bit window (it silently uses 9, which a peer
that asked for 8 may not be able to inflate). So the server declines an
offer that requires it to compress with C{server_max_window_bits=8} (the
next offer, or no compression, is used), and the client refuses a response
imposing C{client_max_window_bits=8} on it. Inflating with a larger window
than the sender used is always safe, so each side inflates with at least 9.

Memory
======

zlib's state is what compression costs per connection: a compressor holds
about C{2 ** (window_bits + 2) + 2 ** (mem_level + 9)} bytes, an inflater
C{2 ** window_bits} plus 7 KiB, for as long as context takeover keeps them.
With 15-bit windows and memLevel 5 that measured 190 KiB of server RSS per
connection after one 64 KiB message each way (39 KiB after a 64-byte one;
C{bench/deflate_memory.py}). So L{SERVER_DEFAULTS}, what a server uses
unless told otherwise, limits both windows to 12 bits and L{DeflateSettings}'
C{mem_level} is 4: 30 to 43 KiB per connection whatever the message size,
for 3-5% more compressed bytes than 15/5. A client whose offer does not let
the server limit its window (no C{client_max_window_bits}) while the
server's settings want it limited is told C{client_no_context_takeover}
instead (RFC 7692 §7.1.1.1 lets the server answer with it unasked), so the
server's inflater for it lives only while a message arrives. Without context takeover in both directions nothing is held
between messages (and small messages compress about half as well).

Codec
=====

A compressed message has RSV1 set on its first frame; its payload is the
raw DEFLATE stream of the message with the final C{00 00 FF FF} removed
(RFC 7692 §7.2.1). Decompression is bounded: the decompressed size counts
against the connection's message limit I{while inflating}, so a small frame
that inflates to gigabytes fails with 1009 after at most the limit, without
allocating the rest (zlib's C{max_length}).
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from .exceptions import NegotiationError

__all__ = [
    "EXTENSION_NAME",
    "SERVER_DEFAULTS",
    "SERVER_WINDOW_BITS",
    "DeflateParameters",
    "DeflateSettings",
    "Deflate",
    "parse_extension_header",
    "server_negotiate",
    "client_offer",
    "client_accept",
]

EXTENSION_NAME = "permessage-deflate"

#: The window (both directions) of L{SERVER_DEFAULTS}: 12 bits (4 KiB)
#: bounds zlib's state to about a fifth of 15 bits' for a few percent of
#: compression (see "Memory" above).
SERVER_WINDOW_BITS = 12
_TAIL = b"\x00\x00\xff\xff"


@dataclass(frozen=True, slots=True)
class DeflateSettings:
    """
    What one side is willing to do (configuration).

    @ivar server_no_context_takeover: (server side) always ask the server's
        compressor to reset per message; (client side) request it.
    @ivar client_no_context_takeover: (server side) always require the
        client's compressor to reset per message; (client side) offer it.
    @ivar server_max_window_bits: the largest window the server's compressor
        uses (server side), or requests (client side); C{None} for 15.
    @ivar client_max_window_bits: the largest window the client's compressor
        may use (server side: imposed if the client allows it, else the
        client is told C{client_no_context_takeover}), or offers (client
        side); C{None} for 15.
    @ivar level: zlib compression level for what this side sends.
    @ivar mem_level: zlib memory level (1-9) for this side's compressor:
        lower uses less memory per connection (4: a 4 KiB hash table and
        4 KiB of pending output, C{2 ** (mem_level + 8)} bytes each).
    @ivar min_size: messages shorter than this are sent uncompressed.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None
    level: int = 6
    mem_level: int = 4
    min_size: int = 32

    def __post_init__(self) -> None:
        for bits in (self.server_max_window_bits, self.client_max_window_bits):
            if bits is not None and not 8 <= bits <= 15:
                raise ValueError("window bits must be between 8 and 15")
        if not 1 <= self.mem_level <= 9:
            raise ValueError("mem_level must be between 1 and 9")


#: The settings of a server told only "accept compression" (the plugin's
#: C{--deflate}): 12-bit windows both ways (the client's when its offer
#: allows), memLevel 4, context takeover kept. Measured: 30 to 43 KiB of
#: server RSS per compressed connection, against 39 to 190 KiB for
#: C{DeflateSettings()} with 15-bit windows and memLevel 5.
SERVER_DEFAULTS = DeflateSettings(server_max_window_bits=SERVER_WINDOW_BITS, client_max_window_bits=SERVER_WINDOW_BITS)


@dataclass(frozen=True, slots=True)
class DeflateParameters:
    """
    The agreement in force on a connection.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    #: RFC 7692 §7.1.2.1: a server accepts an offered server_max_window_bits
    #: by answering with it, even when the value is 15.
    announce_server_bits: bool = field(default=False, compare=False)

    def header(self) -> str:
        """
        The C{Sec-WebSocket-Extensions} value describing this agreement.
        """
        parts = [EXTENSION_NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits != 15 or self.announce_server_bits:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits != 15:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)


Offer = tuple[str, list[tuple[str, str | None]]]


def parse_extension_header(values: Sequence[str]) -> list[Offer]:
    """
    Parse C{Sec-WebSocket-Extensions} values (RFC 6455 §9.1) into
    C{(name, [(param, value or None), ...])}, in order.

    @raise NegotiationError: for a malformed element.
    """
    offers: list[Offer] = []
    for value in values:
        for element in _split(value, ","):
            parts = [p.strip() for p in _split(element, ";")]
            if not parts or not parts[0] or not _is_token(parts[0]):
                raise NegotiationError(f"malformed extension {element.strip()!r}")
            params: list[tuple[str, str | None]] = []
            for part in parts[1:]:
                name, sep, raw = part.partition("=")
                name = name.strip()
                if not _is_token(name):
                    raise NegotiationError(f"malformed extension parameter {part!r}")
                if not sep:
                    params.append((name, None))
                    continue
                raw = raw.strip()
                if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                    raw = raw[1:-1]
                if not _is_token(raw):
                    raise NegotiationError(f"malformed extension parameter value {part!r}")
                params.append((name, raw))
            offers.append((parts[0], params))
    return offers


def _split(text: str, separator: str) -> list[str]:
    # Separators inside quoted strings do not split.
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(char)
    out.append("".join(current))
    return [part for part in out if part.strip()]


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(text: str) -> bool:
    return bool(text) and all(c in _TOKEN_CHARS for c in text)


def _bits(value: str | None) -> int:
    if value is None or not value.isdigit() or (len(value) > 1 and value[0] == "0"):
        raise ValueError(value)
    bits = int(value)
    if not 8 <= bits <= 15:
        raise ValueError(value)
    return bits


def _read_params(params: list[tuple[str, str | None]], *, response: bool) -> dict[str, int | bool | None]:
    """
    Validate one offer's (or response's) parameters (RFC 7692 §7.1).

    @raise ValueError: for an unknown, duplicated or ill-valued parameter.
    """
    seen: dict[str, int | bool | None] = {}
    for name, value in params:
        if name in seen:
            raise ValueError(f"duplicate {name}")
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                raise ValueError(name)
            seen[name] = True
        elif name == "server_max_window_bits":
            seen[name] = _bits(value)
        elif name == "client_max_window_bits":
            # In an offer the value is optional ("I can limit my window").
            seen[name] = None if value is None and not response else _bits(value)
        else:
            raise ValueError(f"unknown parameter {name}")
    return seen


def server_negotiate(offers: list[Offer], settings: DeflateSettings) -> DeflateParameters | None:
    """
    Choose the first permessage-deflate offer the server can honour
    (RFC 7692 §5, §7.1).

    @return: the agreement (its L{DeflateParameters.header} is the answer),
        or C{None} to decline compression.
    """
    for name, params in offers:
        if name != EXTENSION_NAME:
            continue
        try:
            offer = _read_params(params, response=False)
        except ValueError:
            continue  # RFC 7692 §5: decline an offer with invalid parameters
        server_bits = settings.server_max_window_bits or 15
        wanted_client_bits = settings.client_max_window_bits or 15
        client_reset = bool(offer.get("client_no_context_takeover")) or settings.client_no_context_takeover
        if "server_max_window_bits" in offer:
            server_bits = min(server_bits, int(offer["server_max_window_bits"]))  # type: ignore[arg-type]
        if server_bits == 8:
            continue  # zlib cannot compress with an 8-bit window
        client_bits = 15
        if "client_max_window_bits" in offer:
            limit = offer["client_max_window_bits"]
            client_bits = wanted_client_bits
            if isinstance(limit, int) and not isinstance(limit, bool):
                client_bits = min(client_bits, limit)
        elif wanted_client_bits != 15:
            # We want to limit the client's window but it cannot be told
            # (RFC 7692 §7.1.2.2: no client_max_window_bits in the answer):
            # accept with its 15-bit window, but without context takeover
            # (§7.1.1.1: the server may impose it), so our 32 KiB inflater
            # for it is dropped after each message instead of kept.
            client_bits = 15
            client_reset = True
        return DeflateParameters(
            server_no_context_takeover=bool(offer.get("server_no_context_takeover"))
            or settings.server_no_context_takeover,
            client_no_context_takeover=client_reset,
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits,
            announce_server_bits="server_max_window_bits" in offer,
        )
    return None


def client_offer(settings: DeflateSettings) -> str:
    """
    The client's C{Sec-WebSocket-Extensions} offer for C{settings}.

    The client always declares C{client_max_window_bits} (it can honour any
    window the server imposes, 9 to 15).
    """
    parts = [EXTENSION_NAME]
    if settings.server_no_context_takeover:
        parts.append("server_no_context_takeover")
    if settings.client_no_context_takeover:
        parts.append("client_no_context_takeover")
    if settings.server_max_window_bits is not None:
        parts.append(f"server_max_window_bits={settings.server_max_window_bits}")
    if settings.client_max_window_bits is not None:
        parts.append(f"client_max_window_bits={max(settings.client_max_window_bits, 9)}")
    else:
        parts.append("client_max_window_bits")
    return "; ".join(parts)


def client_accept(values: Sequence[str], settings: DeflateSettings) -> DeflateParameters | None:
    """
    Check the server's answer to our offer (RFC 7692 §5, §7.1).

    @return: the agreement, or C{None} when the server declined.
    @raise NegotiationError: for an answer that breaks the offer: another
        extension, several, unknown or invalid parameters, a window larger
        than requested, or a client window the client cannot use.
    """
    answers = parse_extension_header(values)
    if not answers:
        return None
    if len(answers) > 1 or answers[0][0] != EXTENSION_NAME:
        raise NegotiationError("the server accepted an extension that was not offered")
    try:
        answer = _read_params(answers[0][1], response=True)
    except ValueError as error:
        raise NegotiationError(f"invalid permessage-deflate response: {error}") from None
    server_bits = int(answer.get("server_max_window_bits") or 15)
    if settings.server_max_window_bits is not None and server_bits > settings.server_max_window_bits:
        raise NegotiationError("the server chose a larger server_max_window_bits than requested")
    if settings.server_no_context_takeover and "server_no_context_takeover" not in answer:
        raise NegotiationError("the server ignored server_no_context_takeover")
    client_bits = int(answer.get("client_max_window_bits") or 15)
    if settings.client_max_window_bits is not None and client_bits > max(settings.client_max_window_bits, 9):
        raise NegotiationError("the server chose a larger client_max_window_bits than offered")
    if client_bits == 8:
        raise NegotiationError("client_max_window_bits=8 cannot be honoured (zlib compresses with 9 at least)")
    return DeflateParameters(
        server_no_context_takeover="server_no_context_takeover" in answer,
        client_no_context_takeover="client_no_context_takeover" in answer or settings.client_no_context_takeover,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )


class Deflate:
    """
    The per-connection codec: compresses what this side sends, inflates what
    the peer sends, each with the window and context rules agreed.
    """

    __slots__ = (
        "_send_bits",
        "_recv_bits",
        "_send_reset",
        "_recv_reset",
        "_level",
        "_mem_level",
        "min_size",
        "_compressor",
        "_decompressor",
        "_fed",
    )

    def __init__(
        self, params: DeflateParameters, *, is_server: bool, level: int = 6, mem_level: int = 4, min_size: int = 32
    ) -> None:
        if is_server:
            self._send_bits, self._recv_bits = params.server_max_window_bits, params.client_max_window_bits
            self._send_reset, self._recv_reset = params.server_no_context_takeover, params.client_no_context_takeover
        else:
            self._send_bits, self._recv_bits = params.client_max_window_bits, params.server_max_window_bits
            self._send_reset, self._recv_reset = params.client_no_context_takeover, params.server_no_context_takeover
        self._level = level
        self._mem_level = mem_level
        self.min_size = min_size
        # Created on first use: an idle connection holds no zlib state.
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        # Whether the message being inflated has had bytes fed in already.
        self._fed = False

    def compress(self, payload: bytes) -> bytes:
        """
        Compress one whole message (RFC 7692 §7.2.1).
        """
        compressor = self._compressor
        if compressor is None:
            compressor = zlib.compressobj(self._level, zlib.DEFLATED, -max(self._send_bits, 9), self._mem_level)
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        # Keep the context only if it is allowed to carry over.
        self._compressor = None if self._send_reset else compressor
        if data.endswith(_TAIL):
            data = data[:-4]
        return data

    def decompress(self, fragment: bytes, final: bool, limit: int) -> bytes:
        """
        Inflate one fragment of a compressed message.

        @param limit: the most bytes this fragment may inflate to.
        @raise OverflowError: when the output would exceed C{limit}.
        @raise zlib.error: for an invalid DEFLATE stream.
        """
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(-max(self._recv_bits, 9))
        if final and not fragment and not self._fed:
            # An empty compressed message: feeding the 4-byte tail alone
            # would leave the inflater inside a stored block.
            return b""
        self._fed = not final
        data = fragment + _TAIL if final else fragment
        # max_length 0 means "no limit" to zlib (and it refuses huge values).
        out = decompressor.decompress(data, 0 if limit >= sys.maxsize - 1 else limit + 1)
        if len(out) > limit or decompressor.unconsumed_tail:
            raise OverflowError("decompressed message too big")
        if final and self._recv_reset:
            self._decompressor = None
        elif decompressor.eof:
            # The sender ended the DEFLATE stream (BFINAL, RFC 7692 §7.2.3.3):
            # go on with a new inflater primed with the recent output, so the
            # next message is not silently lost (references further back
            # than this message become a zlib error, i.e. 1007).
            bits = max(self._recv_bits, 9)
            self._decompressor = zlib.decompressobj(-bits, zdict=out[-(1 << bits) :]) if out else None
        return out
