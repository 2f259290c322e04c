# -*- test-case-name: tests.core.test_utf8 -*-
"""
Incremental UTF-8 decoding that fails as early as the bytes allow.

RFC 6455 §8.1 asks an endpoint to fail the connection when a text message is
not valid UTF-8; failing on the first fragment that makes the message invalid
(rather than after the whole message arrived) keeps a hostile peer from making
us buffer a message we will reject anyway.
"""

from __future__ import annotations

import codecs

__all__ = ["Utf8Decoder"]

_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")


class Utf8Decoder:
    """
    Decode a text message fragment by fragment.

    CPython's incremental UTF-8 decoder already rejects every invalid prefix
    at once, with one exception: it holds back C{ED A0..BF} (the start of a
    UTF-16 surrogate, never valid in UTF-8) until the third byte arrives.
    L{decode} closes that gap, so a fragment ending in such a prefix fails
    immediately.
    """

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _IncrementalDecoder()

    def decode(self, data: bytes | bytearray, final: bool) -> str:
        """
        Decode one fragment.

        @param data: the fragment's bytes.
        @param final: whether this is the message's last fragment.
        @return: the text decoded so far (a trailing incomplete sequence is
            kept for the next call).
        @raise UnicodeDecodeError: as soon as the bytes seen cannot be the
            prefix of valid UTF-8.
        """
        text = self._decoder.decode(data, final)
        if not final:
            pending = self._decoder.getstate()[0]
            if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise UnicodeDecodeError("utf-8", pending, 0, 2, "surrogate prefix")
        return text

    def copy(self) -> Utf8Decoder:
        """
        Return an independent decoder in the same state: it continues from
        the bytes this one was fed, and feeding it leaves this one as it is.
        """
        other = Utf8Decoder()
        other._decoder.setstate(self._decoder.getstate())
        return other
