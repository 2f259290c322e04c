"""
The C{txpulse} command: C{gen-api-key --auth-keys FILE} adds a key to a
keys file (or creates it) without breaking it, mode 0600 like C{gen-key};
C{--version}.
"""

from __future__ import annotations

import json
import os
import stat
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
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keys.json"], "no temporary file left"


@pytest.mark.parametrize("content", ["{not json", '["a list"]', '{"key": 1}'])
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
