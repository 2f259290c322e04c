"""
Tests for L{txpulse.core.deflate} (RFC 7692 negotiation and codec) and for
how L{txpulse.core.connection} applies it: RSV1 rules, bounded inflation,
close codes.

Compressed input is produced with C{zlib} directly (L{PeerCompressor}), not
with txpulse's own codec, so the core is checked against an independent
encoder; what txpulse compresses is inflated with a raw C{zlib}
decompressor of the agreed window size.
"""

from __future__ import annotations

import functools
import itertools
import os
import tracemalloc
import zlib

import pytest

from txpulse.core.connection import Connection, Ping, Side
from txpulse.core.deflate import (
    SERVER_DEFAULTS,
    Deflate,
    DeflateParameters,
    DeflateSettings,
    client_accept,
    client_offer,
    parse_extension_header,
    server_negotiate,
)
from txpulse.core.exceptions import InvalidPayload, NegotiationError, PayloadTooBig
from txpulse.core.frames import Opcode, encode_frame

from ..support import core
from ..support.deflate import MIB, TAIL, gigabyte_bomb
from ..support.frames import client_frame, raw_frame

# -- helpers -------------------------------------------------------------------


class PeerCompressor:
    """
    The peer's side of permessage-deflate, written with C{zlib} alone (an
    oracle independent of L{Deflate}): each message is compressed, flushed
    with C{Z_SYNC_FLUSH} and stripped of its C{00 00 FF FF} tail.

    @param bits: the LZ77 window the peer compresses with.
    @param takeover: keep the LZ77 context between messages.
    """

    def __init__(self, bits: int = 15, takeover: bool = True) -> None:
        self.bits = bits
        self.takeover = takeover
        self._compressor = self._new()

    def _new(self) -> zlib._Compress:
        return zlib.compressobj(6, zlib.DEFLATED, -self.bits)

    def message(self, data: bytes) -> bytes:
        """
        The payload of one compressed message carrying C{data}.
        """
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if not self.takeover:
            self._compressor = self._new()
        assert out.endswith(TAIL)
        return out[:-4]

    def fragments(self, *parts: bytes) -> list[bytes]:
        """
        The payloads of the fragments of one compressed message, one
        fragment per item of C{parts} (each flushed, so every fragment
        inflates to exactly its part).
        """
        out = [self._compressor.compress(part) + self._compressor.flush(zlib.Z_SYNC_FLUSH) for part in parts]
        out[-1] = out[-1][:-4]
        if not self.takeover:
            self._compressor = self._new()
        return out


def inflate(payload: bytes, bits: int = 15) -> bytes:
    """
    Inflate one compressed message with a raw C{zlib} decompressor (the
    oracle for what txpulse compresses).
    """
    return zlib.decompressobj(-bits).decompress(payload + TAIL)


def deflating_server(params: DeflateParameters | None = None, **kwargs: object) -> Connection:
    """
    A server core with permessage-deflate agreed on C{params}.
    """
    deflate = Deflate(params or DeflateParameters(), is_server=True)
    return Connection(Side.SERVER, deflate=deflate, **kwargs)  # type: ignore[arg-type]


def deflating_client(params: DeflateParameters | None = None, **kwargs: object) -> Connection:
    """
    A client core with permessage-deflate agreed on C{params}.
    """
    deflate = Deflate(params or DeflateParameters(), is_server=False)
    return Connection(Side.CLIENT, deflate=deflate, **kwargs)  # type: ignore[arg-type]


#: Deflate failures may follow data frames already queued.
assert_failed = functools.partial(core.assert_failed, after_data=True)


def client_failed_with(conn: Connection) -> int | None:
    """
    The code of the (masked) close frame a client core queued, if any.
    """
    out = b"".join(conn.data_to_send())
    assert out[0] == 0x88 and out[1] & 0x80, f"expected a masked close frame, got {out[:2].hex()}"
    length = out[1] & 0x7F
    body = bytes(b ^ out[2 + i % 4] for i, b in enumerate(out[6 : 6 + length]))
    return int.from_bytes(body[:2], "big") if length >= 2 else None


@functools.cache
# -- parsing Sec-WebSocket-Extensions ---------------------------------------------


def test_parse_extension_header_reads_offers_in_order() -> None:
    """
    Offers come out in order, across comma-separated elements and across
    several header values, each with its parameters in order.
    """
    values = [
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10, x-foo",
        "permessage-deflate ;server_no_context_takeover",
    ]
    assert parse_extension_header(values) == [
        ("permessage-deflate", [("client_max_window_bits", None), ("server_max_window_bits", "10")]),
        ("x-foo", []),
        ("permessage-deflate", [("server_no_context_takeover", None)]),
    ]


def test_parse_extension_header_unquotes_values() -> None:
    """
    RFC 6455 §9.1: a parameter value may be a quoted string whose content
    is a token; the quotes are removed.
    """
    assert parse_extension_header(['permessage-deflate; client_max_window_bits="10"; x = "y"']) == [
        ("permessage-deflate", [("client_max_window_bits", "10"), ("x", "y")])
    ]


def test_parse_extension_header_without_offers() -> None:
    """
    No values, or values holding only separators, are no offers.
    """
    assert parse_extension_header([]) == []
    assert parse_extension_header(["", " , ,"]) == []


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("permessage deflate", id="space-in-name"),
        pytest.param("@deflate", id="non-token-name"),
        pytest.param('"permessage-deflate"', id="quoted-name"),
        pytest.param("permessage-deflate; =10", id="parameter-without-name"),
        pytest.param("permessage-deflate; server_max_window_bits=", id="empty-value"),
        pytest.param('permessage-deflate; server_max_window_bits=""', id="empty-quoted-value"),
        pytest.param('permessage-deflate; server_max_window_bits="10', id="unterminated-quote"),
        pytest.param("permessage-deflate; server_max_window_bits=1 0", id="space-in-value"),
        pytest.param('permessage-deflate; x="a,b"', id="quoted-comma"),
        pytest.param('permessage-deflate; x="a;b"', id="quoted-semicolon"),
        pytest.param("permessage-deflate; a b", id="space-in-parameter-name"),
    ],
)
def test_parse_extension_header_rejects_malformed_values(value: str) -> None:
    """
    A malformed element raises L{NegotiationError} (the server then
    declines compression; the client fails the handshake).
    """
    with pytest.raises(NegotiationError):
        parse_extension_header([value])


# -- the server's choice -------------------------------------------------------------


def negotiate(offer: str, settings: DeflateSettings | None = None) -> DeflateParameters | None:
    """
    What a server with C{settings} agrees to for the header value C{offer}.
    """
    return server_negotiate(parse_extension_header([offer]), settings or DeflateSettings())


def test_server_accepts_a_bare_offer() -> None:
    """
    A bare C{permessage-deflate} is accepted with every default, and the
    answer is just the extension name.
    """
    agreed = negotiate("permessage-deflate")
    assert agreed == DeflateParameters()
    assert agreed.header() == "permessage-deflate"


def test_server_accepts_chromium_offer() -> None:
    """
    Chromium's offer (C{client_max_window_bits} without a value) is
    accepted; the client keeps its 15-bit window unless the server asks.
    """
    agreed = negotiate("permessage-deflate; client_max_window_bits")
    assert agreed == DeflateParameters()
    assert agreed.header() == "permessage-deflate"


@pytest.mark.parametrize("parameter", ["server_no_context_takeover", "client_no_context_takeover"])
def test_server_honours_no_context_takeover_requests(parameter: str) -> None:
    """
    RFC 7692 §7.1.1: a requested C{*_no_context_takeover} is agreed and
    echoed in the answer.
    """
    agreed = negotiate(f"permessage-deflate; {parameter}")
    assert agreed == DeflateParameters(**{parameter: True})
    assert agreed.header() == f"permessage-deflate; {parameter}"


def test_server_imposes_its_own_no_context_takeover_settings() -> None:
    """
    RFC 7692 §7.1.1.1/§7.1.1.2: the server may answer with either
    C{*_no_context_takeover} even when the client did not offer it.
    """
    settings = DeflateSettings(server_no_context_takeover=True, client_no_context_takeover=True)
    agreed = negotiate("permessage-deflate", settings)
    assert agreed == DeflateParameters(server_no_context_takeover=True, client_no_context_takeover=True)
    assert agreed.header() == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


@pytest.mark.parametrize("bits", range(9, 16))
def test_server_max_window_bits_offered_is_used(bits: int) -> None:
    """
    RFC 7692 §7.1.2.1: the server compresses with at most the window the
    client asked for (9 to 15), and accepts the parameter by answering
    with it ("Otherwise, the server declines the offer"), 15 included: a
    client that asked for 15 and gets no C{server_max_window_bits} back
    must fail the handshake (the C{websockets} client does).
    """
    agreed = negotiate(f"permessage-deflate; server_max_window_bits={bits}")
    assert agreed is not None and agreed.server_max_window_bits == bits
    assert agreed.header() == f"permessage-deflate; server_max_window_bits={bits}"


@pytest.mark.parametrize(("offered", "agreed_bits"), [(None, 10), (9, 9), (10, 10), (12, 10), (15, 10)])
def test_server_max_window_bits_is_capped_by_settings(offered: int | None, agreed_bits: int) -> None:
    """
    The server's own C{server_max_window_bits} setting caps the window it
    compresses with: the smaller of the offer and the setting wins, and the
    answer carries it even when the client did not ask.
    """
    offer = "permessage-deflate" + ("" if offered is None else f"; server_max_window_bits={offered}")
    agreed = negotiate(offer, DeflateSettings(server_max_window_bits=10))
    assert agreed is not None and agreed.server_max_window_bits == agreed_bits
    assert agreed.header() == f"permessage-deflate; server_max_window_bits={agreed_bits}"


def test_server_max_window_bits_8_falls_back_to_the_next_offer() -> None:
    """
    zlib cannot compress with an 8-bit window, so an offer requiring it is
    declined and the next offer is used.
    """
    offers = "permessage-deflate; server_max_window_bits=8; client_no_context_takeover, permessage-deflate"
    assert negotiate(offers) == DeflateParameters()


def test_server_max_window_bits_8_alone_declines_compression() -> None:
    """
    With no other offer, requiring an 8-bit server window declines
    compression altogether (no C{Sec-WebSocket-Extensions} in the answer).
    """
    assert negotiate("permessage-deflate; server_max_window_bits=8") is None


@pytest.mark.parametrize(("setting", "agreed_bits"), [(None, 15), (15, 15), (12, 12), (9, 9)])
def test_client_max_window_bits_without_value(setting: int | None, agreed_bits: int) -> None:
    """
    An offer's C{client_max_window_bits} without a value lets the server
    impose its C{client_max_window_bits} setting (RFC 7692 §7.1.2.2).
    """
    agreed = negotiate("permessage-deflate; client_max_window_bits", DeflateSettings(client_max_window_bits=setting))
    assert agreed is not None and agreed.client_max_window_bits == agreed_bits
    expected = (
        "permessage-deflate" if agreed_bits == 15 else f"permessage-deflate; client_max_window_bits={agreed_bits}"
    )
    assert agreed.header() == expected


@pytest.mark.parametrize(
    ("offered", "setting", "agreed_bits"),
    [(10, None, 10), (15, None, 15), (10, 12, 10), (12, 9, 9), (9, 9, 9), (8, None, 8), ('"11"', None, 11)],
)
def test_client_max_window_bits_with_value(offered: int | str, setting: int | None, agreed_bits: int) -> None:
    """
    A C{client_max_window_bits=N} offer is answered with the smaller of N
    and the server's setting (an 8-bit client window is fine: the server
    inflates with a larger window, which is always safe).
    """
    agreed = negotiate(
        f"permessage-deflate; client_max_window_bits={offered}", DeflateSettings(client_max_window_bits=setting)
    )
    assert agreed is not None and agreed.client_max_window_bits == agreed_bits


def test_client_window_limit_is_not_imposed_on_a_client_that_cannot_be_told() -> None:
    """
    RFC 7692 §7.1.2.2: without C{client_max_window_bits} in the offer the
    server must not answer with it; it accepts and inflates with 15 bits,
    but imposes C{client_no_context_takeover} (§7.1.1.1), so it does not
    keep a 15-bit inflater between messages.
    """
    agreed = negotiate("permessage-deflate", DeflateSettings(client_max_window_bits=10))
    assert agreed == DeflateParameters(client_no_context_takeover=True)
    assert agreed.header() == "permessage-deflate; client_no_context_takeover"
    # A server that does not limit the client's window imposes nothing.
    assert negotiate("permessage-deflate", DeflateSettings(client_max_window_bits=15)) == DeflateParameters()


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        (
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        ),
        ("permessage-deflate", "permessage-deflate; client_no_context_takeover; server_max_window_bits=12"),
        (
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=11",
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=11",
        ),
    ],
)
def test_server_defaults_bound_the_windows(offer: str, answer: str) -> None:
    """
    L{SERVER_DEFAULTS} (what C{--deflate} uses) compress with at most a
    12-bit window and a memLevel of 4, limit the client to 12 bits when its
    offer allows, and otherwise keep no inflater between its messages;
    smaller windows the client asks for are honoured. (bench/deflate_memory.py
    measured 30-43 KiB per connection with these, 39-190 KiB with 15/5.)
    """
    assert SERVER_DEFAULTS.mem_level == 4 and DeflateSettings().mem_level == 4
    agreed = negotiate(offer, SERVER_DEFAULTS)
    assert agreed is not None and agreed.header() == answer


def test_server_defaults_round_trip_with_the_client() -> None:
    """
    A txpulse client (default settings) and a server on L{SERVER_DEFAULTS}
    agree on 12-bit windows and exchange compressed messages both ways.
    """
    agreed = negotiate(client_offer(DeflateSettings()), SERVER_DEFAULTS)
    assert agreed is not None
    client_side = client_accept([agreed.header()], DeflateSettings())
    assert client_side == agreed and agreed.server_max_window_bits == agreed.client_max_window_bits == 12
    server, client = Deflate(agreed, is_server=True), Deflate(client_side, is_server=False)
    for n in range(3):
        text = (b"message %d " % n) * 500
        assert client.decompress(server.compress(text), True, 1 << 20) == text
        assert server.decompress(client.compress(text), True, 1 << 20) == text


INVALID_OFFERS = [
    pytest.param("server_max_window_bits=7", id="server-window-7"),
    pytest.param("server_max_window_bits=16", id="server-window-16"),
    pytest.param("server_max_window_bits=abc", id="server-window-not-a-number"),
    pytest.param("server_max_window_bits=010", id="server-window-leading-zero"),
    pytest.param("server_max_window_bits", id="server-window-without-value"),
    pytest.param("client_max_window_bits=16", id="client-window-16"),
    pytest.param("client_max_window_bits=7", id="client-window-7"),
    pytest.param("client_max_window_bits=0", id="client-window-0"),
    pytest.param("server_no_context_takeover=1", id="server-flag-with-value"),
    pytest.param("client_no_context_takeover=true", id="client-flag-with-value"),
    pytest.param("server_no_context_takeover; server_no_context_takeover", id="duplicate-flag"),
    pytest.param("client_max_window_bits; client_max_window_bits=10", id="duplicate-window"),
    pytest.param("server_max_window_bits=10; server_max_window_bits=10", id="duplicate-server-window"),
    pytest.param("max_window_bits=10", id="unknown-parameter"),
    pytest.param("x-foo", id="unknown-flag"),
]


@pytest.mark.parametrize("params", INVALID_OFFERS)
def test_invalid_offer_is_declined(params: str) -> None:
    """
    RFC 7692 §5: an offer with an unknown, duplicated or ill-valued
    parameter is declined; the next offer is considered.
    """
    assert negotiate(f"permessage-deflate; {params}") is None
    assert negotiate(f"permessage-deflate; {params}, permessage-deflate; client_no_context_takeover") == (
        DeflateParameters(client_no_context_takeover=True)
    )


def test_non_deflate_extensions_are_ignored() -> None:
    """
    Other extensions (here the pre-RFC C{x-webkit-deflate-frame}) are
    skipped, never answered.
    """
    assert negotiate("x-webkit-deflate-frame") is None
    assert negotiate("x-webkit-deflate-frame; max_window_bits=10, foo, permessage-deflate") == DeflateParameters()


# -- the client's offer and its check of the answer --------------------------------


def test_client_offer_default() -> None:
    """
    The default offer always declares C{client_max_window_bits}: the txpulse
    client can honour whatever window (9 to 15) the server imposes.
    """
    assert client_offer(DeflateSettings()) == "permessage-deflate; client_max_window_bits"


def test_client_offer_with_every_setting() -> None:
    """
    Each setting appears in the offer as the matching parameter.
    """
    settings = DeflateSettings(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=11,
    )
    assert client_offer(settings) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits=11"
    )


def test_client_offer_never_declares_an_8_bit_client_window() -> None:
    """
    zlib compresses with 9 bits at least, so an 8-bit client setting is
    offered as 9.
    """
    assert client_offer(DeflateSettings(client_max_window_bits=8)) == "permessage-deflate; client_max_window_bits=9"


def test_client_offer_is_accepted_by_the_server() -> None:
    """
    What the client offers parses and is accepted by a default server.
    """
    offer = client_offer(DeflateSettings(client_no_context_takeover=True, server_max_window_bits=12))
    assert negotiate(offer) == DeflateParameters(client_no_context_takeover=True, server_max_window_bits=12)


def test_client_accept_without_answer_means_declined() -> None:
    """
    No C{Sec-WebSocket-Extensions} in the 101: the server declined, the
    connection runs uncompressed.
    """
    assert client_accept([], DeflateSettings()) is None
    assert client_accept([""], DeflateSettings()) is None


VALID_RESPONSES = [
    pytest.param(DeflateSettings(), "permessage-deflate", DeflateParameters(), id="bare"),
    pytest.param(
        DeflateSettings(),
        "permessage-deflate; server_no_context_takeover",
        DeflateParameters(server_no_context_takeover=True),
        id="server-resets-unasked",
    ),
    pytest.param(
        DeflateSettings(),
        "permessage-deflate; client_no_context_takeover",
        DeflateParameters(client_no_context_takeover=True),
        id="server-imposes-client-reset",
    ),
    pytest.param(
        DeflateSettings(client_no_context_takeover=True),
        "permessage-deflate",
        DeflateParameters(client_no_context_takeover=True),
        id="client-resets-anyway",
    ),
    pytest.param(
        DeflateSettings(server_no_context_takeover=True),
        "permessage-deflate; server_no_context_takeover",
        DeflateParameters(server_no_context_takeover=True),
        id="server-reset-requested",
    ),
    pytest.param(
        DeflateSettings(),
        "permessage-deflate; server_max_window_bits=10",
        DeflateParameters(server_max_window_bits=10),
        id="server-limits-itself-unasked",
    ),
    pytest.param(
        DeflateSettings(server_max_window_bits=12),
        "permessage-deflate; server_max_window_bits=9",
        DeflateParameters(server_max_window_bits=9),
        id="smaller-server-window-than-requested",
    ),
    pytest.param(
        DeflateSettings(server_max_window_bits=12),
        'permessage-deflate; server_max_window_bits="12"',
        DeflateParameters(server_max_window_bits=12),
        id="quoted-server-window",
    ),
    pytest.param(
        DeflateSettings(),
        "permessage-deflate; client_max_window_bits=9",
        DeflateParameters(client_max_window_bits=9),
        id="server-imposes-client-window",
    ),
    pytest.param(
        DeflateSettings(client_max_window_bits=8),
        "permessage-deflate; client_max_window_bits=9",
        DeflateParameters(client_max_window_bits=9),
        id="client-window-8-offered-as-9",
    ),
]


@pytest.mark.parametrize(("settings", "response", "expected"), VALID_RESPONSES)
def test_client_accepts_valid_responses(settings: DeflateSettings, response: str, expected: DeflateParameters) -> None:
    """
    Answers that honour the offer give the agreement in force.
    """
    assert client_accept([response], settings) == expected


BROKEN_RESPONSES = [
    pytest.param(DeflateSettings(), "x-webkit-deflate-frame", id="unknown-extension"),
    pytest.param(DeflateSettings(), "permessage-deflate, permessage-deflate", id="two-extensions"),
    pytest.param(DeflateSettings(), "permessage-deflate, x-foo", id="extra-extension"),
    pytest.param(DeflateSettings(), "permessage-deflate; foo", id="unknown-parameter"),
    pytest.param(DeflateSettings(), "permessage-deflate; server_max_window_bits", id="server-window-without-value"),
    pytest.param(DeflateSettings(), "permessage-deflate; client_max_window_bits", id="client-window-without-value"),
    pytest.param(DeflateSettings(), "permessage-deflate; server_max_window_bits=16", id="server-window-16"),
    pytest.param(DeflateSettings(), "permessage-deflate; server_max_window_bits=7", id="server-window-7"),
    pytest.param(DeflateSettings(), "permessage-deflate; server_no_context_takeover=1", id="flag-with-value"),
    pytest.param(
        DeflateSettings(),
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        id="duplicate-parameter",
    ),
    pytest.param(
        DeflateSettings(server_max_window_bits=10),
        "permessage-deflate; server_max_window_bits=11",
        id="larger-server-window-than-requested",
    ),
    pytest.param(DeflateSettings(server_max_window_bits=10), "permessage-deflate", id="server-window-request-ignored"),
    pytest.param(
        DeflateSettings(server_no_context_takeover=True),
        "permessage-deflate",
        id="server-no-context-takeover-ignored",
    ),
    pytest.param(
        DeflateSettings(client_max_window_bits=10),
        "permessage-deflate; client_max_window_bits=12",
        id="larger-client-window-than-offered",
    ),
    pytest.param(
        DeflateSettings(client_max_window_bits=8),
        "permessage-deflate; client_max_window_bits=10",
        id="larger-client-window-than-9",
    ),
    pytest.param(DeflateSettings(), "permessage-deflate; client_max_window_bits=8", id="client-window-8"),
    pytest.param(DeflateSettings(), "permessage-deflate; =", id="malformed"),
]


@pytest.mark.parametrize(("settings", "response"), BROKEN_RESPONSES)
def test_client_rejects_responses_that_break_the_offer(settings: DeflateSettings, response: str) -> None:
    """
    RFC 7692 §5/§7.1: an answer that does not honour the offer fails the
    handshake with L{NegotiationError}.
    """
    with pytest.raises(NegotiationError):
        client_accept([response], settings)


COMBINATIONS = list(itertools.product([False, True], [False, True], [None, 9, 12, 15], [None, 9, 12]))


@pytest.mark.parametrize(("server_reset", "client_reset", "server_bits", "client_bits"), COMBINATIONS)
def test_every_parameter_combination_agrees_on_both_sides(
    server_reset: bool, client_reset: bool, server_bits: int | None, client_bits: int | None
) -> None:
    """
    For every combination of the four parameters, the txpulse client's
    offer, the txpulse server's answer and the client's reading of it agree
    on the same parameters, which are the ones requested.
    """
    settings = DeflateSettings(
        server_no_context_takeover=server_reset,
        client_no_context_takeover=client_reset,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )
    agreed = negotiate(client_offer(settings))
    expected = DeflateParameters(
        server_no_context_takeover=server_reset,
        client_no_context_takeover=client_reset,
        server_max_window_bits=server_bits or 15,
        client_max_window_bits=client_bits or 15,
    )
    assert agreed == expected
    assert client_accept([agreed.header()], settings) == expected


# -- the codec ------------------------------------------------------------------


MESSAGES = [
    b"hello world " * 100,
    os.urandom(3000),
    b"",
    b"a",
    b"hello world " * 100,
    bytes(range(256)) * 64,
]


@pytest.mark.parametrize(
    "params",
    [
        DeflateParameters(),
        DeflateParameters(server_no_context_takeover=True),
        DeflateParameters(client_no_context_takeover=True),
        DeflateParameters(server_no_context_takeover=True, client_no_context_takeover=True),
        DeflateParameters(server_max_window_bits=9, client_max_window_bits=10),
    ],
    ids=["takeover", "server-resets", "client-resets", "both-reset", "small-windows"],
)
def test_codec_round_trips_in_both_directions(params: DeflateParameters) -> None:
    """
    Several messages on one connection, server to client and client to
    server, come out as they went in, whatever the context rules.
    """
    server = Deflate(params, is_server=True)
    client = Deflate(params, is_server=False)
    for message in MESSAGES:
        assert client.decompress(server.compress(message), True, MIB) == message
        assert server.decompress(client.compress(message), True, MIB) == message


@pytest.mark.parametrize(
    ("is_server", "params", "resets"),
    [
        (True, DeflateParameters(), False),
        (True, DeflateParameters(server_no_context_takeover=True), True),
        (True, DeflateParameters(client_no_context_takeover=True), False),
        (False, DeflateParameters(), False),
        (False, DeflateParameters(client_no_context_takeover=True), True),
        (False, DeflateParameters(server_no_context_takeover=True), False),
    ],
    ids=[
        "server-takeover",
        "server-resets",
        "server-takeover-client-resets",
        "client-takeover",
        "client-resets",
        "client-takeover-server-resets",
    ],
)
def test_context_takeover_compresses_a_repeated_message_smaller(
    is_server: bool, params: DeflateParameters, resets: bool
) -> None:
    """
    With context takeover the second copy of a message refers back to the
    first and is much smaller; when this side's C{*_no_context_takeover}
    is agreed each message is compressed from scratch, to the same bytes.
    (Only the sender's own parameter matters.)
    """
    payload = os.urandom(512) * 4
    codec = Deflate(params, is_server=is_server)
    first, second = codec.compress(payload), codec.compress(payload)
    if resets:
        assert second == first
    else:
        assert len(second) * 10 < len(first)
    # And a raw inflater with context takeover reads both.
    oracle = zlib.decompressobj(-15)
    assert oracle.decompress(first + TAIL) == payload
    if resets:
        oracle = zlib.decompressobj(-15)
    assert oracle.decompress(second + TAIL) == payload


@pytest.mark.parametrize("bits", range(9, 16))
@pytest.mark.parametrize("is_server", [True, False], ids=["server", "client"])
def test_sender_respects_the_agreed_window(bits: int, is_server: bool) -> None:
    """
    What each side sends inflates with a raw decompressor limited to the
    agreed window (a larger window would make it fail with "invalid
    distance too far back"); the payload repeats at a 2000-byte distance,
    beyond the reach of a 9- to 11-bit window (zlib's farthest match is
    the window size less 262 bytes).
    """
    params = (
        DeflateParameters(server_max_window_bits=bits) if is_server else DeflateParameters(client_max_window_bits=bits)
    )
    payload = os.urandom(2000) * 3
    compressed = Deflate(params, is_server=is_server).compress(payload)
    assert inflate(compressed, bits) == payload
    if (1 << bits) - 262 < 2000:
        assert len(compressed) > 5000  # the repeats were out of reach
    else:
        assert len(compressed) < 2500


@pytest.mark.parametrize("bits", [8, 9, 12, 15])
def test_receiver_inflates_with_the_agreed_window(bits: int) -> None:
    """
    The server inflates what a client compressed with the agreed
    C{client_max_window_bits} (an agreed 8 is inflated with 9, which is
    always safe), across several messages with context takeover.
    """
    peer = PeerCompressor(bits=max(bits, 9))
    conn = deflating_server(DeflateParameters(client_max_window_bits=bits))
    payload = os.urandom(300) * 10
    for _ in range(3):
        conn.receive_data(client_frame(Opcode.BINARY, peer.message(payload), rsv1=True))
    assert conn.events_received() == [payload] * 3
    assert conn.error is None


def test_rfc7692_examples_are_decoded() -> None:
    """
    The payloads of RFC 7692 §7.2.3: "Hello" compressed (§7.2.3.1), the
    same message again with context takeover (§7.2.3.2), "Hello" fragmented
    (§7.2.3.1), in a stored block (§7.2.3.4) and with BFINAL set
    (§7.2.3.3), each on a fresh connection where it must be the first.
    """
    hello = bytes.fromhex("f248cdc9c90700")
    conn = deflating_server()
    conn.receive_data(client_frame(Opcode.TEXT, hello, rsv1=True))
    conn.receive_data(client_frame(Opcode.TEXT, bytes.fromhex("f200110000"), rsv1=True))
    assert conn.events_received() == ["Hello", "Hello"]

    conn = deflating_server()
    conn.receive_data(
        client_frame(Opcode.TEXT, bytes.fromhex("f248cd"), rsv1=True, fin=False)
        + client_frame(Opcode.CONT, bytes.fromhex("c9c90700"))
    )
    assert conn.events_received() == ["Hello"]

    for payload in (bytes.fromhex("000500faff48656c6c6f00"), bytes.fromhex("f348cdc9c9070000")):
        conn = deflating_server()
        conn.receive_data(client_frame(Opcode.TEXT, payload, rsv1=True))
        assert conn.events_received() == ["Hello"]
        assert conn.error is None


def test_message_after_a_bfinal_block_with_context_takeover() -> None:
    """
    RFC 7692 §7.2.3.3 lets a sender end a message with a BFINAL block;
    with context takeover the next message is still decompressed (§7.2.2),
    never silently delivered empty. Here both messages are the RFC's
    BFINAL "Hello", which refers to nothing before it.
    """
    bfinal_hello = bytes.fromhex("f348cdc9c9070000")
    conn = deflating_server()
    conn.receive_data(client_frame(Opcode.TEXT, bfinal_hello, rsv1=True))
    conn.receive_data(client_frame(Opcode.TEXT, bfinal_hello, rsv1=True))
    assert conn.events_received() == ["Hello", "Hello"]
    assert conn.error is None


def test_no_context_takeover_receiver_resets_between_messages() -> None:
    """
    With C{client_no_context_takeover} agreed the server inflates each
    client message on its own: messages compressed from scratch each time
    (with a preset-free stream) all decode.
    """
    peer = PeerCompressor(takeover=False)
    conn = deflating_server(DeflateParameters(client_no_context_takeover=True))
    for text in ("first message " * 20, "second message " * 20, "first message " * 20):
        conn.receive_data(client_frame(Opcode.TEXT, peer.message(text.encode()), rsv1=True))
    assert conn.events_received() == ["first message " * 20, "second message " * 20, "first message " * 20]


# -- compressed messages through the connection cores -------------------------------


def test_compressed_messages_between_client_and_server_cores() -> None:
    """
    Text and binary messages the client core sends compressed (RSV1 on the
    wire, masked) reach the server core intact, and the server's
    compressed answers reach the client, several times on one connection.
    """
    client, server = deflating_client(), deflating_server()
    messages: list[str | bytes] = ["héllo wörld " * 30, b"\x00\x01" * 500, os.urandom(5000), "héllo wörld " * 30]
    for message in messages:
        if isinstance(message, str):
            client.send_text(message)
        else:
            client.send_binary(message)
        wire = b"".join(client.data_to_send())
        assert wire[0] == (0xC1 if isinstance(message, str) else 0xC2)
        assert wire[1] & 0x80  # masked
        server.receive_data(wire)
        [received] = server.events_received()
        assert received == message
        if isinstance(received, str):
            server.send_text(received)
        else:
            server.send_binary(received)
        wire = b"".join(server.data_to_send())
        assert wire[0] & 0x40 and not wire[1] & 0x80
        client.receive_data(wire)
        assert client.events_received() == [message]
    assert client.error is None and server.error is None


def test_messages_shorter_than_min_size_are_sent_uncompressed() -> None:
    """
    Below the codec's C{min_size} (32 bytes by default) a message goes out
    as a plain frame (RSV1 clear): compressing it would not pay.
    """
    server = deflating_server()
    server.send_text("short")
    server.send_binary(b"x" * 31)
    server.send_binary(b"x" * 32)
    out = b"".join(server.data_to_send())
    assert out[:7] == b"\x81\x05short"
    assert out[7] == 0x82 and out[8] == 31
    assert out[9 + 31] == 0xC2


def test_uncompressed_message_on_a_deflate_connection_is_accepted() -> None:
    """
    RFC 7692 §6: with the extension agreed, a message without RSV1 is
    simply not compressed; it does not disturb the compression context.
    """
    peer = PeerCompressor()
    conn = deflating_server()
    text = b"context " * 40
    conn.receive_data(
        client_frame(Opcode.TEXT, peer.message(text), rsv1=True)
        + client_frame(Opcode.TEXT, b"plain")
        + client_frame(Opcode.TEXT, peer.message(text), rsv1=True)
    )
    assert conn.events_received() == [text.decode(), "plain", text.decode()]


def test_empty_compressed_message() -> None:
    """
    An empty message compressed by zlib is the single byte C{00} (an empty
    stored block once the tail is appended, RFC 7692 §7.2.3.6); it is
    delivered empty and the next message still inflates.
    """
    peer = PeerCompressor()
    assert peer.message(b"") == b"\x00"
    conn = deflating_server()
    conn.receive_data(
        client_frame(Opcode.TEXT, b"\x00", rsv1=True)
        + client_frame(Opcode.BINARY, peer.message(b""), rsv1=True)
        + client_frame(Opcode.BINARY, peer.message(b"after " * 10), rsv1=True)
    )
    assert conn.events_received() == ["", b"", b"after " * 10]
    assert conn.error is None


def test_empty_payload_with_rsv1_does_not_corrupt_the_next_message() -> None:
    """
    A compressed message with an I{empty} payload (no zlib sender makes
    one, a hand-made peer can) must not leave the inflater inside a block
    header: the next message is either inflated correctly or the
    connection fails with 1007, never delivered as different bytes.
    """
    peer = PeerCompressor()
    conn = deflating_server()
    conn.receive_data(
        client_frame(Opcode.BINARY, b"", rsv1=True)
        + client_frame(Opcode.BINARY, peer.message(b""), rsv1=True)
        + client_frame(Opcode.BINARY, peer.message(b"after " * 10), rsv1=True)
    )
    events = conn.events_received()
    if conn.error is None:
        assert events == [b"", b"", b"after " * 10]
    else:
        assert_failed(conn, 1007)


def test_control_frames_inside_a_compressed_fragmented_message() -> None:
    """
    Control frames (uncompressed, RSV1 clear) may come between the
    fragments of a compressed message; the message is reassembled and
    inflated across them.
    """
    first, second, third = PeerCompressor().fragments(b"a" * 100, "é".encode() * 50, b"c" * 100)
    conn = deflating_server()
    conn.receive_data(
        client_frame(Opcode.TEXT, first, rsv1=True, fin=False)
        + client_frame(Opcode.PING, b"p")
        + client_frame(Opcode.CONT, second, fin=False)
        + client_frame(Opcode.CONT, third)
    )
    assert conn.events_received() == [Ping(b"p"), "a" * 100 + "é" * 50 + "c" * 100]
    assert b"".join(conn.data_to_send()) == encode_frame(Opcode.PONG, b"p")


def test_unlimited_message_size_with_compression() -> None:
    """
    C{max_message_size=None} (no limit, as C{txpulse-client} uses) still
    inflates compressed messages.
    """
    conn = deflating_server(max_message_size=None)
    payload = b"unlimited " * 1000
    conn.receive_data(client_frame(Opcode.BINARY, PeerCompressor().message(payload), rsv1=True))
    assert conn.error is None
    assert conn.events_received() == [payload]


# -- limits: the decompressed size ---------------------------------------------------


def test_decompression_bomb_fails_with_1009_without_allocating_the_gigabyte() -> None:
    """
    A frame of about 1 MiB (just within the 1 MiB message limit, so the
    header check lets it in) that inflates to 1 GiB of zeros fails with
    1009 once the decompressed size passes the limit; the core never
    allocates much more than the limit (measured with C{tracemalloc}).
    """
    payload = gigabyte_bomb()
    assert len(payload) <= MIB  # the frame itself is within the limit
    frame = client_frame(Opcode.BINARY, payload, rsv1=True)
    assert frame[0] == 0xC2
    conn = Connection(Side.SERVER, max_message_size=MIB, deflate=Deflate(DeflateParameters(), is_server=True))
    tracemalloc.start()
    try:
        conn.receive_data(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert conn.events_received() == []
    assert isinstance(conn.error, PayloadTooBig)
    assert "decompressed" in str(conn.error)
    assert_failed(conn, 1009)
    assert peak < 16 * MIB, f"peak allocation {peak / MIB:.1f} MiB"


def test_one_kib_frame_inflating_past_the_limit_fails_with_1009() -> None:
    """
    A frame of about 1 KiB that inflates to 1 MiB + 1 byte (DEFLATE's best
    ratio is about 1000:1) fails with 1009.
    """
    payload = PeerCompressor().message(bytes(MIB + 1))
    assert len(payload) < 1100
    conn = deflating_server(max_message_size=MIB)
    conn.receive_data(client_frame(Opcode.BINARY, payload, rsv1=True))
    assert conn.events_received() == []
    assert isinstance(conn.error, PayloadTooBig)
    assert_failed(conn, 1009)


def test_decompressed_size_limit_at_n_and_n_plus_1() -> None:
    """
    A compressed message inflating to exactly C{max_message_size} is
    delivered; one more byte fails with 1009 (text and binary).
    """
    conn = deflating_server(max_message_size=1000)
    peer = PeerCompressor()
    conn.receive_data(client_frame(Opcode.BINARY, peer.message(b"x" * 1000), rsv1=True))
    conn.receive_data(client_frame(Opcode.TEXT, peer.message(b"y" * 1000), rsv1=True))
    assert conn.events_received() == [b"x" * 1000, "y" * 1000]
    assert conn.error is None
    for opcode in (Opcode.BINARY, Opcode.TEXT):
        conn = deflating_server(max_message_size=1000)
        conn.receive_data(client_frame(opcode, PeerCompressor().message(b"z" * 1001), rsv1=True))
        assert conn.events_received() == []
        assert_failed(conn, 1009)


def test_decompressed_limit_applies_to_each_message() -> None:
    """
    The decompressed size is counted per message: several messages each
    under the limit pass even when together they exceed it.
    """
    conn = deflating_server(max_message_size=MIB)
    peer = PeerCompressor()
    for _ in range(4):
        conn.receive_data(client_frame(Opcode.BINARY, peer.message(bytes(700 * 1024)), rsv1=True))
    assert conn.events_received() == [bytes(700 * 1024)] * 4
    assert conn.error is None


def test_fragmented_compressed_message_passing_the_limit_in_its_second_fragment() -> None:
    """
    The decompressed size is summed across fragments: a first fragment
    inflating to 600 KiB is accepted, a second one inflating to another
    600 KiB takes the message past 1 MiB and fails with 1009 although
    both fragments are tiny on the wire.
    """
    first, second = PeerCompressor().fragments(bytes(600 * 1024), bytes(600 * 1024))
    assert len(first) + len(second) < 2000
    conn = deflating_server(max_message_size=MIB)
    conn.receive_data(client_frame(Opcode.BINARY, first, rsv1=True, fin=False))
    assert conn.error is None and conn.data_to_send() == []
    conn.receive_data(client_frame(Opcode.CONT, second))
    assert conn.events_received() == []
    assert isinstance(conn.error, PayloadTooBig)
    assert_failed(conn, 1009)

    # Exactly the limit across two fragments passes.
    first, second = PeerCompressor().fragments(bytes(MIB // 2), bytes(MIB // 2))
    conn = deflating_server(max_message_size=MIB)
    conn.receive_data(client_frame(Opcode.BINARY, first, rsv1=True, fin=False) + client_frame(Opcode.CONT, second))
    assert conn.events_received() == [bytes(MIB)]


# -- RSV bits --------------------------------------------------------------------


@pytest.mark.parametrize("start_compressed", [True, False], ids=["compressed-start", "plain-start"])
def test_rsv1_on_a_continuation_frame_fails_with_1002(start_compressed: bool) -> None:
    """
    RFC 7692 §6.1: RSV1 is set on the first frame of a compressed message
    only; on a continuation frame it is a protocol error (1002).
    """
    first, second = PeerCompressor().fragments(b"a" * 100, b"b" * 100)
    conn = deflating_server()
    conn.receive_data(
        client_frame(Opcode.TEXT, first if start_compressed else b"a" * 100, rsv1=start_compressed, fin=False)
    )
    assert conn.error is None
    conn.receive_data(client_frame(Opcode.CONT, second, rsv1=True))
    assert conn.events_received() == []
    assert_failed(conn, 1002)


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_rsv1_on_a_control_frame_fails_with_1002(opcode: int) -> None:
    """
    RFC 7692 §6.1: control frames are never compressed; RSV1 on one is a
    protocol error even with the extension agreed (also between fragments).
    """
    payload = b"\x03\xe8" if opcode == Opcode.CLOSE else b"x"
    conn = deflating_server()
    conn.receive_data(client_frame(opcode, payload, rsv1=True))
    assert conn.events_received() == []
    assert_failed(conn, 1002)

    conn = deflating_server()
    conn.receive_data(client_frame(Opcode.TEXT, b"part", fin=False) + client_frame(opcode, payload, rsv1=True))
    assert_failed(conn, 1002)


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_rsv1_without_negotiated_deflate_fails_with_1002(opcode: int) -> None:
    """
    RFC 6455 §5.2: without a negotiated extension RSV1 must be 0, even on a
    perfectly valid compressed payload.
    """
    conn = Connection(Side.SERVER)
    conn.receive_data(client_frame(opcode, PeerCompressor().message(b"hello " * 20), rsv1=True))
    assert conn.events_received() == []
    assert_failed(conn, 1002)


def test_client_rejects_rsv1_without_negotiated_deflate() -> None:
    """
    The client core also fails with 1002 on a compressed server frame when
    no extension was agreed, and reads it when one was.
    """
    frame = encode_frame(Opcode.TEXT, PeerCompressor().message(b"hello " * 20), rsv1=True)
    plain = Connection(Side.CLIENT)
    plain.receive_data(frame)
    assert plain.events_received() == []
    assert client_failed_with(plain) == 1002

    compressing = deflating_client()
    compressing.receive_data(frame)
    assert compressing.events_received() == ["hello " * 20]


@pytest.mark.parametrize(
    "first_byte",
    [0xA1, 0x91, 0xE1, 0xD1, 0xF1, 0xA2, 0xB2, 0x20, 0x10],
    ids=lambda b: f"{b:#04x}",
)
def test_rsv2_and_rsv3_fail_with_1002_even_with_deflate(first_byte: int) -> None:
    """
    permessage-deflate only gives RSV1 a meaning: RSV2 or RSV3 (alone or
    with RSV1, on any frame) is still a protocol error.
    """
    conn = deflating_server()
    conn.receive_data(raw_frame(first_byte, PeerCompressor().message(b"data " * 10)))
    assert conn.events_received() == []
    assert_failed(conn, 1002)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\xff\xff\xff", id="reserved-block-type"),
        pytest.param(b"\x00\x05\x00\x00\x00hello", id="bad-stored-length"),
        pytest.param(bytes.fromhex("f248cdc9c90700") + b"\x04\x00", id="garbage-after-data"),
    ],
)
def test_invalid_compressed_data_fails_with_1007(payload: bytes) -> None:
    """
    A payload that is not valid DEFLATE data fails with 1007 ("data
    inconsistent with the type of the message").
    """
    conn = deflating_server()
    conn.receive_data(client_frame(Opcode.BINARY, payload, rsv1=True))
    assert conn.events_received() == []
    assert isinstance(conn.error, InvalidPayload)
    assert_failed(conn, 1007)


def test_compressed_text_with_invalid_utf8_fails_with_1007() -> None:
    """
    Text is validated after inflation: a compressed text message whose
    content is not UTF-8 fails with 1007.
    """
    conn = deflating_server()
    conn.receive_data(client_frame(Opcode.TEXT, PeerCompressor().message(b"ok " * 20 + b"\xff"), rsv1=True))
    assert conn.events_received() == []
    assert_failed(conn, 1007)


def test_invalid_utf8_in_the_first_compressed_fragment_fails_fast() -> None:
    """
    Invalid UTF-8 in the first fragment of a compressed text message fails
    with 1007 before the rest of the message arrives.
    """
    first, _ = PeerCompressor().fragments(b"ok " * 20 + b"\xc0\xaf", b"rest")
    conn = deflating_server()
    conn.receive_data(client_frame(Opcode.TEXT, first, rsv1=True, fin=False))
    assert conn.events_received() == []
    assert_failed(conn, 1007)
