"""
The C{txpulse} command: C{gen-api-key --auth-keys FILE} adds a key to a
keys file (or creates it) without breaking it, mode 0600 like C{gen-key},
losing no key when runs race, refusing what the server would refuse (odd
files, bad identities, duplicate keys); C{--version}.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import txpulse
from txpulse.plugin.command import main as command
from txpulse.server.auth import ApiKeys


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_gen_api_key_creates_the_keys_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """
    With C{--auth-keys FILE} and no such file, the command creates it (mode
    0600) holding the new key, and prints only the key on stdout.
    """
    keys = tmp_path / "keys.json"
    assert command(["gen-api-key", "alice", "--auth-keys", str(keys)]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert len(key) >= 40 and "\n" not in key
    assert "alice" in err and str(keys) in err
    assert json.loads(keys.read_text()) == {key: "alice"}
    assert ApiKeys.fromFile(keys).identify(key) == "alice"
    assert mode(keys) == 0o600


def test_gen_api_key_adds_to_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """
    An existing keys file keeps its keys and gains the new one; it is still
    JSON the plugin reads, and ends up mode 0600 even if it was looser.
    """
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"old-key": "bob"}))
    keys.chmod(0o644)
    assert command(["gen-api-key", "alice", "--auth-keys", str(keys)]) == 0
    first = capsys.readouterr().out.strip()
    assert command(["gen-api-key", "alice", "--auth-keys", str(keys)]) == 0
    second = capsys.readouterr().out.strip()
    assert json.loads(keys.read_text()) == {"old-key": "bob", first: "alice", second: "alice"}
    loaded = ApiKeys.fromFile(keys)
    assert (loaded.identify("old-key"), loaded.identify(first), loaded.identify(second)) == ("bob", "alice", "alice")
    assert mode(keys) == 0o600
    assert sorted(path.name for path in tmp_path.iterdir()) == [".keys.json.lock", "keys.json"], (
        "no temporary file left"
    )


@pytest.mark.parametrize(
    "content",
    ["{not json", '["a list"]', '{"key": 1}', '{"a": "x", "a": "y"}', '{"k": "a\\nb"}', '{"k": ""}', '{"": "bob"}'],
)
def test_gen_api_key_leaves_a_bad_file_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    """
    A keys file that is not a JSON object of keys is not overwritten: the
    command prints one line naming the file and exits 1.
    """
    keys = tmp_path / "keys.json"
    keys.write_text(content)
    assert command(["gen-api-key", "alice", "--auth-keys", str(keys)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and str(keys) in err and "unchanged" in err
    assert keys.read_text() == content


def test_gen_api_key_without_a_file_prints_the_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    """
    Without C{--auth-keys}, the command prints the JSON to add by hand (as
    before).
    """
    assert command(["gen-api-key", "carol"]) == 0
    ((key, identity),) = json.loads(capsys.readouterr().out).items()
    assert identity == "carol" and len(key) >= 40


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """
    C{txpulse --version} prints C{txpulse.__version__}.
    """
    with pytest.raises(SystemExit) as exited:
        command(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"txpulse {txpulse.__version__}"


def test_gen_api_key_parallel_runs_lose_no_key(tmp_path: Path) -> None:
    """
    Twenty C{gen-api-key} processes started at once on one file all
    succeed, and the file ends up with all twenty keys, each working: the
    read-modify-write is under an exclusive lock (before, a run could
    overwrite another's key after printing it).
    """
    keys = tmp_path / "keys.json"
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "txpulse.plugin.command", "gen-api-key", f"user{n}", "--auth-keys", str(keys)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(20)
    ]
    printed = {}
    for n, run in enumerate(runs):
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        printed[out.decode().strip()] = f"user{n}"
    loaded = ApiKeys.fromFile(keys)
    assert json.loads(keys.read_text()) == printed
    assert all(loaded.identify(key) == identity for key, identity in printed.items())
    assert mode(keys) == 0o600
    assert sorted(path.name for path in tmp_path.iterdir()) == [".keys.json.lock", "keys.json"]


@pytest.mark.parametrize(
    "identity",
    ["", " ", "a\nb", "\x1b[31mred", "x" * 100_000, "x" * 33, " alice", "alice ", "bidi\u202eevil", "zero\u200bwidth"],
)
def test_gen_api_key_refuses_bad_identities(tmp_path: Path, capsys: pytest.CaptureFixture[str], identity: str) -> None:
    """
    An identity must be 1 to 32 characters (the chat's name rule: on a
    protected C{/chat} the identity is the name), with no control or
    formatting character and no space at either end: otherwise one escaped,
    clipped line and exit 1, with or without C{--auth-keys}, and no file.
    """
    keys = tmp_path / "keys.json"
    for extra in ([], ["--auth-keys", str(keys)]):
        assert command(["gen-api-key", identity, *extra]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and len(err) < 200 and "\x1b" not in err
        assert "identity" in err
    assert not keys.exists()


def test_gen_api_key_accepts_unicode_identities(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """
    Letters, inner spaces, punctuation and emoji are fine, up to 32
    characters.
    """
    keys = tmp_path / "keys.json"
    for identity in ("Zoë Ñúñez", "bob@example.org", "🎉", "x" * 32):
        assert command(["gen-api-key", identity, "--auth-keys", str(keys)]) == 0
    assert sorted(json.loads(keys.read_text()).values()) == sorted(["Zoë Ñúñez", "bob@example.org", "🎉", "x" * 32])
    capsys.readouterr()


def test_gen_api_key_refuses_what_is_not_a_regular_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """
    C{/dev/zero}, a FIFO, a directory, a symlink to any of them and a file
    over 16 MiB are refused at once, unread (no growing memory, no blocking
    on the FIFO), with one line and exit 1; nothing is created beside them.
    """
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    directory = tmp_path / "dir"
    directory.mkdir()
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(16 * 1024 * 1024 + 1)
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    for path, what in (
        ("/dev/zero", "character device"),
        (fifo, "FIFO"),
        (directory, "directory"),
        (link, "character device"),
        (big, "over the limit"),
    ):
        assert command(["gen-api-key", "alice", "--auth-keys", str(path)]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and str(path) in err and what in err and "unchanged" in err
    assert not (tmp_path / "dir" / ".dir.lock").exists() and not (tmp_path / ".fifo.lock").exists()
    assert big.stat().st_size == 16 * 1024 * 1024 + 1


def test_gen_api_key_writes_through_a_symlink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """
    A symlinked keys file stays a symlink: the file it points to (the one
    the server reads) gets the key, replaced atomically beside itself.
    """
    real = tmp_path / "secrets" / "keys.json"
    real.parent.mkdir()
    real.write_text(json.dumps({"old-key": "bob"}))
    link = tmp_path / "keys.json"
    link.symlink_to(real)
    assert command(["gen-api-key", "alice", "--auth-keys", str(link)]) == 0
    key = capsys.readouterr().out.strip()
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads(real.read_text()) == {"old-key": "bob", key: "alice"}
    assert mode(real) == 0o600
    assert sorted(path.name for path in real.parent.iterdir()) == [".keys.json.lock", "keys.json"]
