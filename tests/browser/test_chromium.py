"""
End to end, as a user would: C{twistd -n txpulse} in a subprocess, its page
open in a real headless Chromium.

Skipped (with the reason) when Chromium or playwright is missing, except in
CI (C{CI} set), where a missing browser is a failure:
C{scripts/install-browser.sh} installs both.

The main test also refreshes the README's screenshot, C{docs/screenshot.png},
when it is missing or C{TXPULSE_SCREENSHOT=update} is set; every run writes
C{artifacts/screenshot.png}.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from ..support.processes import TwistdServer
from .conftest import TUNING, WAIT_MS, skip_without_browser

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


def _wait_until(page: Any, expression: str) -> None:
    """
    Poll C{expression} in the page until it is true (at most L{WAIT_MS}):
    C{page.evaluate} runs under the page's Content-Security-Policy, where
    C{wait_for_function} (which evals its predicate) cannot.
    """
    for _ in range(WAIT_MS // 50):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"still false after {WAIT_MS} ms: {expression}")


def _messages(page: Any) -> list[str]:
    """
    The server messages in the page's log, newest first.
    """
    texts: list[str] = page.locator("#log li.msg span").all_text_contents()
    return texts


def _save_screenshot(page: Any) -> None:
    artifact = ROOT / "artifacts" / "screenshot.png"
    artifact.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(artifact), full_page=True)
    readme = ROOT / "docs" / "screenshot.png"
    if not readme.exists() or os.environ.get("TXPULSE_SCREENSHOT") == "update":
        readme.parent.mkdir(exist_ok=True)
        readme.write_bytes(artifact.read_bytes())


def test_page_shows_heartbeats_replies_and_reconnects(server: TwistdServer, page: Any) -> None:
    page.goto(server.url + TUNING)
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "open")
    expect(status).to_have_text("open")

    # Heartbeats arrive and are listed, newest first.
    # (Not wait_for_function on the plugin's pages: Playwright evaluates its
    # predicate with eval, which their Content-Security-Policy forbids.)
    expect(page.locator("#log li.msg").nth(2)).to_be_attached()
    beats = _messages(page)
    assert all(re.fullmatch(r"heartbeat \d+", text) for text in beats), beats
    numbers = [int(text.split()[1]) for text in beats]
    assert numbers == sorted(numbers, reverse=True), numbers

    # Send a message: the reply and a round-trip time show up.
    message = f"hello {uuid.uuid4().hex[:8]}"
    page.fill("#message", message)
    page.click("#send")
    expect(page.locator("#reply")).to_have_text(f"reply to {message}")
    expect(page.locator("#rtt")).to_have_text(re.compile(r"^\d+\.\d ms$"))
    assert 0 <= float(page.locator("#rtt").get_attribute("data-ms")) < WAIT_MS
    expect(page.locator("#message")).to_have_value("")
    # The reply is not logged as a heartbeat.
    assert not any(text.startswith("reply to") for text in _messages(page))

    expect(page.locator("#log li.msg").nth(7)).to_be_attached(timeout=WAIT_MS)
    _save_screenshot(page)
    last_before = int(_messages(page)[0].split()[1])
    assert last_before >= 3

    # Record what arrives from now on through the module's event API.
    page.evaluate(
        """() => {
            window.received = [];
            window.pulse.addEventListener("message", (e) => window.received.push(e.detail.data));
        }"""
    )

    # Stop the server: the page notices and keeps trying.
    server.stop()
    expect(status).to_have_attribute("data-state", "reconnecting")
    expect(status).to_contain_text("reconnecting")
    expect(page.locator("#send")).to_be_disabled()
    expect(page.locator("#log li.event").first).to_contain_text("connection lost")

    # Start a new server on the same port: the page reconnects by itself and
    # the new connection's heartbeats start again from 1.
    server.start()
    expect(status).to_have_attribute("data-state", "open")
    _wait_until(page, "window.received.length >= 2")
    received = page.evaluate("window.received")
    assert received[:2] == ["heartbeat 1", "heartbeat 2"], received
    expect(page.locator("#log li.msg span").first).to_have_text(re.compile(r"^heartbeat \d+$"))
    expect(page.locator("#send")).to_be_enabled()

    # And the new connection answers too.
    page.fill("#message", "again")
    page.click("#send")
    expect(page.locator("#reply")).to_have_text("reply to again")


#: A page that is not txpulse's own: it imports the module by absolute URL and
#: drives it by hand.
MODULE_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>module test</title>
<script type="module">
import * as txpulse from "/txpulse.js";
window.txpulse = txpulse;
window.events = [];
window.track = (name, pulse) => {
  pulse.onstatus = (state, info) => window.events.push([name, "status", state, info]);
  pulse.onopen = () => window.events.push([name, "open"]);
  pulse.onmessage = (data) => window.events.push([name, "message", data]);
  pulse.onclose = (code, reason, wasClean) => window.events.push([name, "close", code, reason]);
  return pulse;
};
window.ready = true;
</script>
"""


def _open_module_page(server: TwistdServer, page: Any) -> None:
    # The document must come from the server itself: Chromium refuses
    # WebSocket connections to loopback from a document of unknown address
    # (ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS), which a page fulfilled by
    # a Playwright route is. So open a real (404) page of the server's and
    # replace its content; the module then loads same-origin.
    page.goto(server.url + "no-such-page")
    page.set_content(MODULE_PAGE)
    page.wait_for_function("window.ready === true")


def _events(page: Any, name: str) -> list[list[Any]]:
    events: list[list[Any]] = page.evaluate(f"window.events.filter((e) => e[0] === {name!r})")
    return [event[1:] for event in events]


def test_module_sends_receives_and_closes_for_good(server: TwistdServer, page: Any) -> None:
    _open_module_page(server, page)
    page.evaluate(
        """() => {
            window.echo = window.track("echo", new window.txpulse.PulseSocket({
                url: window.txpulse.defaultUrl("/echo"),
                silenceTimeout: 0,
                backoff: {initial: 50},
            }));
        }"""
    )
    page.wait_for_function("window.echo.state === 'open'")
    assert page.evaluate("window.echo.send('ping 1')") is True
    page.wait_for_function("window.events.some((e) => e[1] === 'message' && e[2] === 'ping 1')")

    page.evaluate("window.echo.close(1000, 'bye')")
    page.wait_for_function("window.echo.state === 'closed'")
    page.wait_for_timeout(400)  # several backoff periods: no reconnection
    events = _events(page, "echo")
    assert events == [
        ["status", "connecting", {}],
        ["status", "open", {}],
        ["open"],
        ["message", "ping 1"],
        ["status", "closing", {}],
        ["close", 1000, events[5][2]],  # the server's reason: it need not echo ours
        ["status", "closed", {}],
    ], events
    assert page.evaluate("window.echo.send('late')") is False


def test_module_drops_a_silent_connection_and_reconnects(server: TwistdServer, page: Any) -> None:
    # /echo never speaks first: with a short silenceTimeout the client must
    # give up on each connection and open a new one.
    _open_module_page(server, page)
    page.evaluate(
        """() => {
            window.quiet = window.track("quiet", new window.txpulse.PulseSocket({
                url: window.txpulse.defaultUrl("/echo"),
                silenceTimeout: 300,
                backoff: {initial: 50, max: 200, jitter: 0},
            }));
        }"""
    )
    page.wait_for_function(
        "window.events.filter((e) => e[0] === 'quiet' && e[1] === 'open').length >= 3", timeout=WAIT_MS
    )
    page.evaluate("window.quiet.close()")
    events = _events(page, "quiet")
    states = [event[1] for event in events if event[0] == "status"]
    assert states[:4] == ["connecting", "open", "reconnecting", "reconnecting"], states
    closes = [event for event in events if event[0] == "close"]
    assert closes[0] == ["close", 1006, "no message for 300 ms"], closes
    # The backoff restarted after the successful open: same first delay.
    delays = [event[2]["delay"] for event in events if event[0] == "status" and event[1] == "reconnecting"]
    assert delays[0] == delays[2] == 50, delays


def test_module_gives_up_on_a_token_that_never_comes(server: TwistdServer, page: Any) -> None:
    # A token provider that never settles (a hung token endpoint): each
    # attempt fails after tokenTimeout and the next follows the backoff;
    # close() while an attempt waits for its token ends it with a close event.
    _open_module_page(server, page)
    page.evaluate(
        """() => {
            window.tokenCalls = 0;
            window.hung = window.track("hung", new window.txpulse.PulseSocket({
                url: window.txpulse.defaultUrl("/echo"),
                token: () => { window.tokenCalls += 1; return new Promise(() => {}); },
                tokenTimeout: 150,
                backoff: {initial: 50, max: 50, jitter: 0},
            }));
        }"""
    )
    page.wait_for_function("window.tokenCalls >= 3", timeout=WAIT_MS)
    page.evaluate("window.hung.close()")
    assert page.evaluate("window.hung.state") == "closed"
    events = _events(page, "hung")
    closes = [event for event in events if event[0] == "close"]
    assert closes[:2] == [["close", 1006, "no token after 150 ms"]] * 2, closes
    assert closes[-1] == ["close", 1006, "closed by the client"], closes
    states = [event[1] for event in events if event[0] == "status"]
    assert states[:3] == ["connecting", "reconnecting", "reconnecting"] and states[-1] == "closed", states
    calls = page.evaluate("window.tokenCalls")
    page.wait_for_timeout(400)  # no attempt after close()
    assert page.evaluate("window.tokenCalls") == calls


def test_module_close_during_a_token_wait_lets_onclose_start_again(server: TwistdServer, page: Any) -> None:
    # An onclose that calls open() (a "reconnect on close" pattern): the new
    # attempt stands, the state does not read "closed" while it runs.
    _open_module_page(server, page)
    state = page.evaluate(
        """() => {
            const pulse = new window.txpulse.PulseSocket({
                url: window.txpulse.defaultUrl("/echo"),
                token: () => new Promise(() => {}),
                connect: false,
            });
            let reopened = false;
            pulse.onclose = () => { if (!reopened) { reopened = true; pulse.open(); } };
            pulse.open();
            pulse.close();
            const state = pulse.state;
            pulse.onclose = null;
            pulse.close();
            return [state, pulse.state];
        }"""
    )
    assert state == ["connecting", "closed"]


def test_module_helpers(server: TwistdServer, page: Any) -> None:
    """
    The module's helpers, in the browser: C{backoffDelay} grows and
    jitters, C{defaultUrl} resolves against the page, C{PulseSocket}
    refuses a non-WebSocket URL, C{tuningFromQuery} (what the demo pages
    read their query string with) keeps only numbers >= 0, and
    C{reconnectingText} words a reconnection as both pages show it.
    """
    _open_module_page(server, page)
    results = page.evaluate(
        """() => {
            const { backoffDelay, defaultUrl, reconnectingText, tuningFromQuery } = window.txpulse;
            const b = { initial: 100, max: 1000, factor: 2, jitter: 0.5 };
            return {
                delays: [0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, b, () => 0)),
                jittered: backoffDelay(2, b, () => 0.5),
                pageUrl: defaultUrl("/ws"),
                https: defaultUrl("/ws", { href: "https://example.test:8443/a/b?q#h" }),
                relative: defaultUrl("ws", { href: "http://example.test/demo/index.html" }),
                badUrl: (() => {
                    try { new window.txpulse.PulseSocket({ url: "ftp://x/" }); return "accepted"; }
                    catch (e) { return e.name; }
                })(),
                tuning: tuningFromQuery("?silence=0&backoff=100&backoffMax=x"),
                pageTuning: tuningFromQuery(),
                negative: tuningFromQuery("?silence=-1&backoffMax=500"),
                waiting: reconnectingText({ attempt: 2, delay: 1250 }),
                trying: reconnectingText({ attempt: 2, delay: 0 }),
            };
        }"""
    )
    assert results["delays"] == [100, 200, 400, 800, 1000, 1000]
    assert results["jittered"] == 300
    assert results["pageUrl"] == f"ws://127.0.0.1:{server.port}/ws"
    assert results["https"] == "wss://example.test:8443/ws"
    assert results["relative"] == "ws://example.test/demo/ws"
    assert results["badUrl"] == "SyntaxError"
    assert results["tuning"] == {"silenceTimeout": 0, "backoff": {"initial": 100}}
    assert results["pageTuning"] == {"silenceTimeout": None, "backoff": {}}  # undefined: the default
    assert results["negative"] == {"silenceTimeout": None, "backoff": {"max": 500}}
    assert results["waiting"] == "reconnecting… (attempt 2 in 1.3 s)"
    assert results["trying"] == "reconnecting… (attempt 2)"


@pytest.mark.parametrize("path", ["", "chat.html"])
def test_pages_load_without_a_failed_request(server: TwistdServer, page: Any, path: str) -> None:
    """
    Loading a built-in page asks for nothing the server does not have: no
    response of 400 or more, and the page's icon is the linked
    C{favicon.svg}, fetched and served. (A desktop browser asks for
    C{/favicon.ico} when a page links no icon, and logs its 404; headless
    Chromium does not, so what is checked here is that the linked one loads.)
    """
    failed: list[str] = []
    icons: list[int] = []

    def answered(response: Any) -> None:
        if response.status >= 400:
            failed.append(f"{response.status} {response.url}")
        if "/favicon." in response.url:
            icons.append(response.status)

    page.on("response", answered)
    page.goto(server.url + path + TUNING)
    page.wait_for_load_state("load")
    # The icon is fetched after the load event: wait for it.
    for _ in range(WAIT_MS // 50):
        if icons:
            break
        page.wait_for_timeout(50)
    assert failed == []
    assert icons == [200]
