"""
The examples of Twisted's WebSocket how-to (C{docs/web/examples/websocket}:
C{websocket-server.rpy}, C{index.html} + C{websocket-browser-client.js},
C{websocket-client.py}), byte for byte as the installed Twisted's release
ships them, run on txpulse with nothing changed but the two names swapped at
run time (L{tests.compat.swapped}).

The files come from Twisted's source distribution for the installed
version (C{pip download}, kept in C{build/twisted-sdist/}; no copy lives in
this repository). Without it (no network, no cache) the tests are skipped,
saying why. C{examples/} holds txpulse's own annotated walk-through of the
same how-to (C{tests/test_examples.py}).

  - the server: C{twist web --path HOWTO} with the swap; a C{websockets}
    client gets C{heartbeat 1}, sends a message and gets C{reply to ...};
    a plain GET shows txpulse is the one answering (426, see the README's
    porting section); nothing is logged as an error, a closed connection
    included;
  - the page: C{/} is the how-to's C{index.html}; Node runs the how-to's
    browser script unchanged (as a classic script, as the page loads it)
    against a stand-in for the few DOM calls it makes, presses "connect"
    (C{doConnect()}, the button's C{onclick}) and sees what the how-to
    says the page shows;
  - the client: the how-to's C{websocket-client.py} on txpulse's endpoint
    prints what the how-to says it prints.

Both clients hardcode C{ws://localhost:8080/websocket-server.rpy}; the
test's server is on a free port, so the connection is redirected there
(Node: a C{WebSocket} subclass; Python: C{TXPULSE_COMPAT_REDIRECT}). Only
the port and host change, never the code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import twisted
from websockets.sync.client import connect

from ..support.net import free_port
from ..support.node import needsNode, run_harness
from ..support.processes import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "twisted-sdist"
HOWTO_FILES = ("index.html", "websocket-browser-client.js", "websocket-client.py", "websocket-server.rpy")
STEP_TIMEOUT = 5.0


def _howtoSource() -> Path | str:
    """
    The directory holding Twisted's how-to files for the installed
    version (downloading the source distribution once), or why not.
    """
    version = twisted.__version__
    target = CACHE / version
    if all((target / name).exists() for name in HOWTO_FILES):
        return target
    sdist = CACHE / f"twisted-{version}.tar.gz"
    if not sdist.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", f"twisted=={version}"]
            + ["-d", str(CACHE)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0 or not sdist.exists():
            return f"cannot download Twisted {version}'s source distribution: {result.stderr.strip()[-300:]}"
    prefix = f"twisted-{version}/docs/web/examples/websocket/"
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as archive:
        for name in HOWTO_FILES:
            member = archive.extractfile(prefix + name)
            assert member is not None, name
            (target / name).write_bytes(member.read())
    return target


@pytest.fixture(scope="module")
def howto(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """
    A fresh directory with Twisted's how-to files, unchanged.
    """
    source = _howtoSource()
    if isinstance(source, str):
        pytest.skip(source)
    copy = tmp_path_factory.mktemp("howto")
    for name in HOWTO_FILES:
        shutil.copyfile(source / name, copy / name)
    return copy


class SwappedTwist(ServerProcess):
    """
    C{python -m tests.compat.swapped twist web --path HOWTO} on a free
    loopback port (run from the root, which C{-m} puts on the path;
    C{tests/conftest.py} puts C{src} on C{PYTHONPATH}).
    """

    def __init__(self, howto: Path, log: Path, port: int) -> None:
        argv = [sys.executable, "-m", "tests.compat.swapped", "twist", "web"]
        argv += ["--listen", f"tcp:{port}:interface=127.0.0.1", "--path", str(howto)]
        super().__init__(argv, log, [port], cwd=ROOT)


@pytest.fixture(scope="module")
def server(howto: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """
    Twisted's how-to directory served by C{twist web} with the swap;
    yields the port and the server's log.
    """
    port = free_port()
    log = tmp_path_factory.mktemp("twist") / "twist.log"
    with SwappedTwist(howto, log, port):
        yield port, log


def _logErrors(log: Path) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if "Traceback" in line or "Unhandled" in line]


def test_server_rpy_serves_heartbeats_and_replies(server: tuple[int, Path]) -> None:
    """
    Twisted's C{websocket-server.rpy}, unchanged, on txpulse's
    C{WebSocketResource}: C{heartbeat 1} at once, C{reply to X} for X; the
    client's close is answered and the server logs no error (its
    C{connectionLost} stops the heartbeat loop).
    """
    port, log = server
    with connect(f"ws://127.0.0.1:{port}/websocket-server.rpy", open_timeout=STEP_TIMEOUT) as ws:
        assert ws.recv(timeout=STEP_TIMEOUT) == "heartbeat 1"
        ws.send("hello")
        received = ws.recv(timeout=STEP_TIMEOUT)
        while isinstance(received, str) and received.startswith("heartbeat "):
            received = ws.recv(timeout=STEP_TIMEOUT)
        assert received == "reply to hello"
    assert ws.close_code == 1000
    time.sleep(1.2)  # a heartbeat's time: a loop left running would log an error
    assert _logErrors(log) == [], log.read_text()


def test_txpulse_is_the_one_serving_the_rpy(server: tuple[int, Path]) -> None:
    """
    A plain GET to the C{.rpy} gets txpulse's answer (426 with
    C{Upgrade: websocket}), not Twisted's (400): the swap took effect.
    """
    port, _ = server
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/websocket-server.rpy", timeout=STEP_TIMEOUT)
    assert caught.value.code == 426
    assert caught.value.headers["Upgrade"] == "websocket"


def test_index_page_is_the_howtos(server: tuple[int, Path], howto: Path) -> None:
    """
    C{/} serves the how-to's C{index.html}: a button whose C{onclick} is
    C{doConnect()}, the C{console} element and the script tag.
    """
    port, _ = server
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=STEP_TIMEOUT) as response:
        body = response.read()
    assert body == (howto / "index.html").read_bytes()
    assert b'onclick="doConnect()"' in body and b'id="console"' in body
    assert b'src="websocket-browser-client.js"' in body


# The how-to's browser script, loaded as the page loads it (a classic
# script: it assigns the undeclared global `webSocket`), with a stand-in for
# the DOM calls it makes, and a WebSocket that goes to the test's port
# instead of localhost:8080. Prints RESULT {...} once the page shows the
# first heartbeat and the reply, or after 5 s.
_HARNESS = r"""
import vm from "node:vm";
import { readFileSync } from "node:fs";

const [script, port] = process.argv.slice(2);
class Element {
  constructor(tag, text = "") { this.tag = tag; this.text = text; this.children = []; }
  append(...nodes) { this.children.push(...nodes); }
  get textContent() { return this.text + this.children.map((c) => c.textContent).join(""); }
}
const consoleElement = new Element("div");
globalThis.document = {
  getElementById(id) {
    if (id !== "console") throw new Error(`no element ${id}`);
    return consoleElement;
  },
  createElement: (tag) => new Element(tag),
  createTextNode: (text) => new Element("#text", text),
};
if (typeof WebSocket === "undefined") {
  console.log("RESULT " + JSON.stringify({ unsupported: true }));
  process.exit(0);
}
const opened = [];
const NodeWebSocket = WebSocket;
globalThis.WebSocket = class extends NodeWebSocket {
  constructor(url, ...rest) {
    opened.push(url);
    super(url.replace("ws://localhost:8080/", `ws://127.0.0.1:${port}/`), ...rest);
  }
};
vm.runInThisContext(readFileSync(script, "utf8"), { filename: script });
doConnect();  // the page's button: onclick="doConnect()"
const shown = () => consoleElement.children.map((div) => div.textContent);
const deadline = Date.now() + 5000;
while (!(shown().includes("message received: «heartbeat 1»") &&
         shown().includes("message received: «reply to hello world»")) && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
console.log("RESULT " + JSON.stringify({ opened, shown: shown() }));
process.exit(0);
"""


@needsNode
def test_browser_client_shows_what_the_howto_says(server: tuple[int, Path], howto: Path, tmp_path: Path) -> None:
    """
    The how-to's browser script, unchanged, connects (to
    C{ws://localhost:8080/websocket-server.rpy}, as written), sends
    C{hello world} on open, and the page lists what the how-to shows:
    C{socket opened: ...}, C{message received: «heartbeat 1»},
    C{message received: «reply to hello world»}.
    """
    port, log = server
    stdout = run_harness(_HARNESS, tmp_path, str(howto / "websocket-browser-client.js"), str(port))
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, stdout
    output = json.loads(lines[0][len("RESULT ") :])
    if output.get("unsupported"):
        pytest.skip("this node has no WebSocket")
    assert output["opened"] == ["ws://localhost:8080/websocket-server.rpy"]
    shown = output["shown"]
    assert shown[0].startswith("socket opened: «")
    assert "message received: «heartbeat 1»" in shown
    assert "message received: «reply to hello world»" in shown
    assert not any(line.startswith(("error", "close")) for line in shown), shown
    assert _logErrors(log) == [], log.read_text()


def test_python_client_prints_what_the_howto_says(server: tuple[int, Path], howto: Path) -> None:
    """
    The how-to's C{websocket-client.py}, unchanged, on txpulse's
    C{WebSocketClientEndpoint}: it prints C{connecting...},
    C{connected!}, then C{received text: 'heartbeat 1'},
    C{received text: 'reply to hello, world!'} and more heartbeats (it
    would run 10 s; stopped once those are seen).
    """
    port, log = server
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TXPULSE_COMPAT_REDIRECT": f"localhost:8080=127.0.0.1:{port}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.compat.swapped", "run", str(howto / "websocket-client.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 3 * STEP_TIMEOUT
        while "received text: 'heartbeat 2'" not in lines and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=STEP_TIMEOUT)
    assert lines[:2] == ["connecting...", "connected!"], (lines, stderr)
    assert "received text: 'heartbeat 1'" in lines, (lines, stderr)
    assert "received text: 'reply to hello, world!'" in lines, (lines, stderr)
    assert "received text: 'heartbeat 2'" in lines, (lines, stderr)
    assert "Traceback" not in stderr, stderr
