"""
Tests for the examples in C{examples/}: the walk-through of Twisted's
WebSocket how-to, running on txpulse.

Each example is exercised for real: one C{twist web --path examples}
subprocess (the command the README gives) serves the whole directory on a
free loopback port for the module, then a C{websockets} client talks to
C{websocket-server.rpy}, plain HTTP fetches the static files, and Node runs
the browser client's code against a minimal stand-in for the DOM. The
user-style tests next to C{countdown.py} (written with L{txpulse.testing})
are run the way a user runs them: C{pytest examples/test_countdown.py}.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from .support.net import free_port
from .support.node import NODE, needsNode, run_harness
from .support.processes import ServerProcess, script

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BROWSER_CLIENT = EXAMPLES / "websocket-browser-client.js"

#: How long any single network step may take.
STEP_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """
    Run C{twist web --listen tcp:PORT --path examples} from the repository
    root until the module's tests are done; yield PORT once it accepts
    connections.
    """
    port = free_port()
    argv = [script("twist"), "web", "--listen", f"tcp:{port}:interface=127.0.0.1", "--path", "examples"]
    with ServerProcess(argv, tmp_path_factory.mktemp("twist") / "twist.log", [port], cwd=ROOT):
        yield port


def _get(port: int, path: str) -> tuple[int, str, str]:
    """
    GET C{path}; return the status, the content type (without parameters)
    and the body as text.
    """
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=STEP_TIMEOUT) as response:
        return response.status, response.headers.get_content_type(), response.read().decode("utf-8")


def test_server_sends_heartbeats_and_replies(port: int) -> None:
    """
    websocket-server.rpy sends C{heartbeat 1}, C{heartbeat 2}, ... and
    answers a text message C{X} with C{reply to X}.
    """
    with connect(f"ws://127.0.0.1:{port}/websocket-server.rpy", open_timeout=STEP_TIMEOUT) as ws:
        assert ws.recv(timeout=STEP_TIMEOUT) == "heartbeat 1"
        assert ws.recv(timeout=STEP_TIMEOUT) == "heartbeat 2"
        ws.send("hello")
        received = ws.recv(timeout=STEP_TIMEOUT)
        while isinstance(received, str) and re.fullmatch(r"heartbeat \d+", received):
            received = ws.recv(timeout=STEP_TIMEOUT)
        assert received == "reply to hello"


def test_client_example_greets_and_prints_what_it_receives(port: int) -> None:
    """
    examples/websocket-client.py (Twisted's C{WebSocketClientDemo} on
    txpulse's endpoint) connects to the .rpy, sends its greeting and prints
    C{received text: ...} for each message, heartbeats and the reply.
    """
    import sys

    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "websocket-client.py"),
            f"ws://127.0.0.1:{port}/websocket-server.rpy",
            "--count",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["connecting...", "connected!"]
    received = [line for line in lines if line.startswith("received text: ")]
    assert len(received) == 3
    assert "received text: 'heartbeat 1'" in received
    assert "received text: 'reply to hello, world!'" in received
    assert lines[-1].startswith("connection lost")


def test_index_page_is_served_as_html(port: int) -> None:
    """
    C{/} serves index.html as text/html, with the connect button and the
    script tag that loads the browser client.
    """
    status, contentType, body = _get(port, "/")
    assert status == 200
    assert contentType == "text/html"
    assert body == (EXAMPLES / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<button id="connect"[^>]*>connect</button>', body)
    assert re.search(r'<script [^>]*src="websocket-browser-client\.js"', body)


def test_browser_client_is_served_as_javascript(port: int) -> None:
    """
    The browser client is served with a JavaScript content type (browsers
    refuse to run a module script served as anything else).
    """
    status, contentType, body = _get(port, "/websocket-browser-client.js")
    assert status == 200
    assert contentType in {"text/javascript", "application/javascript"}
    assert body == BROWSER_CLIENT.read_text(encoding="utf-8")


def test_browser_client_finds_its_elements_in_index_page() -> None:
    """
    Every element id the browser client looks up exists in index.html.
    """
    script = BROWSER_CLIENT.read_text(encoding="utf-8")
    wanted = set(re.findall(r'getElementById\("([^"]+)"\)', script))
    present = set(re.findall(r'\bid="([^"]+)"', (EXAMPLES / "index.html").read_text(encoding="utf-8")))
    assert wanted
    assert wanted <= present


@needsNode
def test_browser_client_passes_node_syntax_check() -> None:
    """
    C{node --check} accepts the browser client.
    """
    assert NODE is not None
    result = subprocess.run([NODE, "--check", str(BROWSER_CLIENT)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


# A stand-in for the few DOM features the browser client uses, then the
# client itself, loaded as the page would load it. Modes:
#   url PAGE_URL  a recording WebSocket: print the URL "connect" opens;
#   live PAGE_URL Node's own WebSocket against the server: connect, wait for
#                 heartbeat 1, send a message, wait for the reply, disconnect;
#                 print what the page showed.
_HARNESS = r"""
import { pathToFileURL } from "node:url";

const [script, mode, pageUrl] = process.argv.slice(2);

class FakeElement {
  constructor(tagName, id = "") {
    Object.assign(this, { tagName, id, textContent: "", value: "", className: "", disabled: false });
    this.dataset = {};
    this.children = [];
    this.listeners = {};
  }
  addEventListener(type, listener) { (this.listeners[type] ??= []).push(listener); }
  dispatch(type) {
    for (const listener of this.listeners[type] ?? []) {
      listener({ type, target: this, preventDefault() {} });
    }
  }
  append(...nodes) { this.children.push(...nodes); }
  focus() {}
}

const elements = new Map();
globalThis.window = { location: new URL(pageUrl) };
globalThis.document = {
  getElementById(id) {
    if (!elements.has(id)) elements.set(id, new FakeElement("div", id));
    return elements.get(id);
  },
  createElement: (tagName) => new FakeElement(tagName),
};

const opened = [];
if (mode === "live" && typeof WebSocket === "undefined") {
  console.log(JSON.stringify({ unsupported: true }));
  process.exit(0);
}
if (mode === "url") {
  globalThis.WebSocket = class {
    static OPEN = 1;
    constructor(url) { opened.push(url); this.readyState = 0; }
    addEventListener() {}
  };
}

await import(pathToFileURL(script).href);
const el = (id) => document.getElementById(id);
const shown = () => el("messages").children.map((item) => [item.className, item.textContent]);
const initialStatus = el("status").textContent;
el("connect").dispatch("click");

if (mode === "url") {
  console.log(JSON.stringify({ initialStatus, opened }));
  process.exit(0);
}

async function until(condition, what) {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; page shows ${JSON.stringify(shown())}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
const has = (kind, text) => () => shown().some(([k, t]) => k === kind && t === text);

await until(() => el("status").dataset.state === "open", "the open status");
const openStatus = el("status").textContent;
const sendEnabled = !el("send").disabled && !el("text").disabled;
await until(has("received", "heartbeat 1"), "heartbeat 1");
el("text").value = "hello from the page";
el("send-form").dispatch("submit");
const textAfterSend = el("text").value;
await until(has("received", "reply to hello from the page"), "the reply");
el("disconnect").dispatch("click");
await until(() => el("status").dataset.state === "closed", "the closed status");
console.log(JSON.stringify({
  initialStatus, openStatus, sendEnabled, textAfterSend,
  shown: shown(), closedStatus: el("status").textContent,
  connectEnabled: !el("connect").disabled,
}));
process.exit(0);
"""


def _runHarness(tmp_path: Path, *args: str) -> dict[str, object]:
    """
    Run the browser client in Node under L{_HARNESS}; return what it printed.
    """
    output: dict[str, object] = json.loads(run_harness(_HARNESS, tmp_path, str(BROWSER_CLIENT), *args))
    return output


@needsNode
@pytest.mark.parametrize(
    ("pageUrl", "socketUrl"),
    [
        ("http://example.test:8080/", "ws://example.test:8080/websocket-server.rpy"),
        ("https://example.test/", "wss://example.test/websocket-server.rpy"),
        ("https://example.test:8443/sub/index.html?x=1#top", "wss://example.test:8443/websocket-server.rpy"),
    ],
)
def test_browser_client_connects_to_page_host_with_matching_scheme(
    tmp_path: Path, pageUrl: str, socketUrl: str
) -> None:
    """
    "connect" opens C{/websocket-server.rpy} on the page's own host and
    port, over wss:// when the page came over https:// and ws:// otherwise.
    """
    output = _runHarness(tmp_path, "url", pageUrl)
    assert output == {"initialStatus": "disconnected", "opened": [socketUrl]}


@needsNode
def test_browser_client_shows_messages_and_sends_text(tmp_path: Path, port: int) -> None:
    """
    Against the real server, the browser client shows the connection
    status, lists received messages newest last, sends the text box's
    content and shows the reply, and reports a clean close.
    """
    output = _runHarness(tmp_path, "live", f"http://127.0.0.1:{port}/")
    if output.get("unsupported"):
        pytest.skip("this node has no WebSocket")
    assert output["initialStatus"] == "disconnected"
    assert output["openStatus"] == f"connected to ws://127.0.0.1:{port}/websocket-server.rpy"
    assert output["sendEnabled"] is True
    assert output["textAfterSend"] == ""
    assert output["closedStatus"] == "closed (code 1000)"
    assert output["connectEnabled"] is True
    shown = output["shown"]
    assert isinstance(shown, list)
    assert shown[0] == ["event", "connection opened"]
    assert shown[1] == ["received", "heartbeat 1"]
    sent = shown.index(["sent", "hello from the page"])
    reply = shown.index(["received", "reply to hello from the page"])
    assert sent < reply
    # Every heartbeat, in the order sent: the list is newest last.
    received = [text for kind, text in shown if kind == "received" and text.startswith("heartbeat ")]
    assert received == [f"heartbeat {n}" for n in range(1, len(received) + 1)]
    # The server answers the page's close (1000, "bye") with code 1000; echoing
    # the reason too is allowed but not required (RFC 6455 §5.5.1).
    assert shown[-1][0] == "event"
    assert re.fullmatch(r'connection closed \(code 1000(, reason "bye")?\)', shown[-1][1])


def test_countdown_example_tests_pass() -> None:
    """
    C{examples/test_countdown.py}, the complete user-style test the README
    shows (C{txpulse.testing} against C{examples/countdown.py}), passes when
    run as the README says, with this tree's C{src} on the path.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(EXAMPLES / "test_countdown.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b4 passed\b", result.stdout), result.stdout
