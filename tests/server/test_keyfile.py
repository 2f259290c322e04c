"""
Tests for L{txpulse.server.keyfile}: the rules the server
(L{ApiKeys.fromFile}, L{TokenIssuer.fromFile}) and C{txpulse gen-api-key}
share for the files they trust: regular files of bounded size, no key
twice, valid identities; one-line errors that never quote a key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from txpulse.demos.chat import MAX_NAME
from txpulse.server.auth import ApiKeys, TokenIssuer
from txpulse.server.keyfile import MAX_FILE_SIZE, MAX_IDENTITY_LENGTH, identityProblem, readBounded


def test_identity_rule_is_the_chat_name_rule() -> None:
    """
    On a protected C{/chat} the identity becomes the name, so identities
    can be no longer than names.
    """
    assert MAX_IDENTITY_LENGTH == MAX_NAME


@pytest.mark.parametrize(
    "identity",
    ["", " ", "\t", "a\nb", "\x1b[31mred", "x" * 33, " alice", "alice ", "a\u202eb", "a\u200bb", "a\u2028b", 7],
)
def test_bad_identities(identity: object) -> None:
    """
    Empty, blank, over 32 characters, with control or formatting characters
    (newlines, ESC, bidi overrides, zero-width, line separators), padded
    with spaces, or not a string: each gets a reason.
    """
    assert identityProblem(identity) is not None


@pytest.mark.parametrize("identity", ["a", "alice", "Zoë Ñúñez", "bob@example.org", "🎉", "x" * 32, "a b"])
def test_good_identities(identity: str) -> None:
    """
    Letters of any script, inner spaces, punctuation and emoji are fine.
    """
    assert identityProblem(identity) is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"k1": "alice", "k2": "bob", "k1": "eve"}', "entry #3 (identity 'eve') repeats the key"),
        ('{"k1": "alice", "k2": "a\\nb"}', "entry #2 (identity 'a\\nb')"),
        ('{"k1": "\\u001b[2J"}', "entry #1 (identity '\\x1b[2J')"),
        ('{"k1": "' + "x" * 100_000 + '"}', "at most 32 characters, not 100000"),
        ('{"k1": ""}', "entry #1"),
        ('{"": "alice"}', "the key must be a non-empty string"),
        ('{"k1": 3}', "must be a string"),
        ('["k1"]', "expected a JSON object"),
        ("nope", "is not JSON"),
    ],
)
def test_api_keys_file_refused_naming_the_entry(tmp_path: Path, content: str, expected: str) -> None:
    """
    A keys file with a duplicate key, a bad identity or a bad shape is
    refused with one line naming the file and the entry (by position and
    escaped, clipped identity; never by key).
    """
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ValueError) as refused:
        ApiKeys.fromFile(path)
    message = str(refused.value)
    assert expected in message and str(path) in message
    assert "\n" not in message and "\x1b" not in message and len(message) < 300
    assert "k1" not in message, "keys are secrets"


def test_api_keys_file_must_be_a_small_regular_file(tmp_path: Path) -> None:
    """
    C{/dev/zero}, a FIFO (which would block), a directory and a file over
    16 MiB are refused unread; a symlink to a good file is followed.
    """
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_FILE_SIZE + 1)
    for path, what in (("/dev/zero", "character device"), (fifo, "FIFO"), (tmp_path, "directory"), (big, "limit")):
        with pytest.raises(ValueError, match=what):
            ApiKeys.fromFile(path)
        with pytest.raises(ValueError, match=what):
            TokenIssuer.fromFile(path)
    real = tmp_path / "real.json"
    real.write_text(json.dumps({"k1": "alice"}))
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert ApiKeys.fromFile(link).identify("k1") == "alice"
    with pytest.raises(ValueError, match="cannot read API keys"):
        ApiKeys.fromFile(tmp_path / "missing.json")


def test_api_keys_constructor_checks_identities() -> None:
    """
    L{ApiKeys} built in code follows the same rule as its files.
    """
    assert ApiKeys({"k": "alice"}).identify("k") == "alice"
    with pytest.raises(ValueError, match="entry #2"):
        ApiKeys({"k": "alice", "k2": "a\nb"})


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_read_is_capped_even_when_the_size_lies() -> None:
    """
    A "regular" file whose size says 0 (a C{/proc} file) is still read at
    most C{limit + 1} bytes, then refused.
    """
    assert os.stat("/proc/self/status").st_size == 0
    with pytest.raises(ValueError, match="grew over the limit of 10 bytes"):
        readBounded("/proc/self/status", limit=10)
    assert "Name:" in readBounded("/proc/self/status")
