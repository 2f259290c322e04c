"""
Tests for L{txpulse.core.utf8.Utf8Decoder}: incremental and fail-fast.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from txpulse.core.utf8 import Utf8Decoder


def is_valid_prefix(data: bytes) -> bool:
    """
    Whether C{data} can be extended to valid UTF-8 (by brute force over up to
    three continuation bytes).
    """
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError as error:
        if error.end < len(data) or error.reason != "unexpected end of data":
            return False
    for extra in (
        b"\x80",
        b"\x80\x80",
        b"\x80\x80\x80",
        b"\x90\x80\x80",
        b"\xa0\x80",
        b"\xa0\x80\x80",
        b"\xbf",
        b"\xbf\xbf",
        b"\xbf\xbf\xbf",
    ):
        try:
            (data + extra).decode("utf-8")
            return True
        except UnicodeDecodeError:
            pass
    return False


@given(st.binary(max_size=12), st.integers(0, 12))
def test_fails_exactly_when_no_valid_continuation_exists(data: bytes, split: int) -> None:
    """
    Fed in two pieces, the decoder raises on the first piece exactly when no
    valid UTF-8 starts with it, and accepts the whole exactly when it is
    valid UTF-8.
    """
    decoder = Utf8Decoder()
    first, second = data[:split], data[split:]
    try:
        head = decoder.decode(first, False)
        first_ok = True
    except UnicodeDecodeError:
        first_ok = False
    assert first_ok == is_valid_prefix(first)
    if not first_ok:
        return
    try:
        text = decoder.decode(second, True)
    except UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
    else:
        assert head + text == data.decode("utf-8")


def test_surrogate_prefix_fails_before_the_third_byte() -> None:
    """
    C{ED A0} starts a UTF-16 surrogate, invalid in UTF-8: rejected at once
    (CPython's own incremental decoder waits for a third byte).
    """
    with pytest.raises(UnicodeDecodeError):
        Utf8Decoder().decode(b"abc\xed\xa0", False)
    assert Utf8Decoder().decode(b"abc\xed\x9f", False) == "abc"
