"""
Resuming in the browser: the chat page and txpulse.js's L{PulsePubSub}
against the real C{twistd txpulse}, through a TCP proxy the test cuts
(L{tests.support.cutproxy}) while others go on talking: the server keeps
running, so it keeps the history the page resumes from. Then a server
restart (history lost): the page says so once, and doubles nothing.

Skipped like the rest of the browser suite when Chromium or playwright is
missing (a failure in CI).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ..support.cutproxy import CutProxy
from ..support.processes import TwistdServer
from .conftest import TUNING, WAIT_MS, skip_without_browser

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pages(browser: Any) -> Iterator[Callable[[str], Any]]:
    """
    Opens C{url} in a new browser context (a user of its own); fails the
    test if any page threw an uncaught exception.
    """
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page(url: str) -> Any:
        context = browser.new_context(viewport={"width": 900, "height": 640})
        contexts.append(context)
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        return page

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()
    assert errors == [], f"uncaught errors in the pages: {errors}"


def join(page: Any, name: str, room: str) -> None:
    page.fill("#name", name)
    page.fill("#room", room)
    page.click("#join")
    expect(page.locator("#room-card")).to_be_visible()


def say(page: Any, text: str) -> None:
    expect(page.locator("#send")).to_be_enabled()
    page.fill("#text", text)
    page.click("#send")
    expect(page.locator("#text")).to_have_value("")


def message(page: Any, text: str) -> Any:
    return page.locator("#messages li.message").filter(
        has=page.locator(".text", has_text=re.compile(f"^{re.escape(text)}$"))
    )


def said(page: Any) -> list[str]:
    """
    The texts of the messages the page shows, oldest first.
    """
    texts: list[str] = page.locator("#messages li.message .text").all_inner_texts()
    return texts


def notices(page: Any) -> list[str]:
    """
    The room's join/leave notices the page shows, oldest first.
    """
    texts: list[str] = page.locator("#messages li.notice:not(.local) .text").all_inner_texts()
    return texts


def test_chat_resumes_after_its_connection_drops_with_nothing_lost_or_doubled(
    server: TwistdServer, pages: Callable[[str], Any]
) -> None:
    """
    Alice's connection goes through a proxy, Bob's does not. The proxy cuts
    Alice's connection and refuses her reconnections for a while; Bob says
    five things meanwhile. Once Alice is back, her page shows those five,
    once each and in order, between what was said before and after, and
    no "could not be recovered" notice (the server still had them).
    """
    room = f"resume-{uuid.uuid4().hex[:8]}"
    with CutProxy(server.port) as proxy:
        alice = pages(proxy.url("chat.html" + TUNING))
        bob = pages(server.url + "chat.html" + TUNING)
        join(alice, "alice", room)
        expect(alice.locator("#status")).to_have_attribute("data-state", "open")
        join(bob, "bob", room)
        say(bob, "before")
        expect(message(alice, "before")).to_have_count(1)

        proxy.cut()
        expect(alice.locator("#status")).to_have_attribute("data-state", "reconnecting")
        away = [f"while away {n}" for n in range(5)]
        for text in away:
            say(bob, text)
        alice.wait_for_timeout(400)  # a few refused attempts: she is still away
        expect(message(alice, away[0])).to_have_count(0)
        proxy.restore()

        expect(alice.locator("#status")).to_have_attribute("data-state", "open")
        expect(message(alice, away[-1])).to_have_count(1)
        say(bob, "after")
        expect(message(alice, "after")).to_have_count(1)
        assert said(alice) == ["before", *away, "after"]
        assert alice.locator("#messages li.local.missed").count() == 0
        # Her own leave and join are part of what the room saw meanwhile.
        assert notices(alice) == ["alice joined", "bob joined", "alice left", "alice joined"]
        assert said(bob) == ["before", *away, "after"]


def test_chat_says_once_that_a_restarted_server_lost_the_history(
    server: TwistdServer, pages: Callable[[str], Any]
) -> None:
    """
    A restarted server has lost the room's history (a new epoch): the page
    says so once, keeps what it showed, doubles nothing, and goes on.
    """
    room = f"restart-{uuid.uuid4().hex[:8]}"
    alice = pages(server.url + "chat.html" + TUNING)
    join(alice, "alice", room)
    say(alice, "one")
    expect(message(alice, "one")).to_have_count(1)
    server.stop()
    expect(alice.locator("#status")).to_have_attribute("data-state", "reconnecting")
    server.start()
    expect(alice.locator("#status")).to_have_attribute("data-state", "open")
    expect(alice.locator("#messages li.local.missed")).to_have_count(1)
    say(alice, "two")
    expect(message(alice, "two")).to_have_count(1)
    assert said(alice) == ["one", "two"]
    assert notices(alice) == ["alice joined", "alice joined"]
    assert alice.locator("#messages li.local.missed").count() == 1


#: A page that drives txpulse.js's PulsePubSub by hand: a subscriber through
#: the page's origin (the proxy) and a publisher straight to the server.
PUBSUB_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>pubsub resume test</title>
<script type="module">
import * as txpulse from "/txpulse.js";
window.txpulse = txpulse;
window.got = [];
window.resets = [];
window.opens = 0;
window.ready = true;
</script>
"""


def open_pubsub_page(pages: Callable[[str], Any], origin: str) -> Any:
    # A real (404) page of the origin, its content replaced (see
    # tests/browser/test_chromium.py: Chromium's local network checks).
    page = pages(origin + "no-such-page")
    page.set_content(PUBSUB_PAGE)
    page.wait_for_function("window.ready === true")
    return page


def start_pubsub(page: Any, publisherUrl: str) -> None:
    page.evaluate(
        """(publisherUrl) => {
            const { PulsePubSub, defaultUrl } = window.txpulse;
            const backoff = { initial: 50, max: 200 };
            window.sub = new PulsePubSub({ url: defaultUrl("/pubsub"), backoff });
            window.sub.onrecoveryfailed = (topic, position) => window.resets.push([topic, position]);
            window.sub.socket.addEventListener("open", () => window.opens++);
            for (const topic of ["a", "b"]) {
                window.sub.subscribe(topic, (data, position) => window.got.push([topic, data, position]));
            }
            window.pub = new PulsePubSub({ url: publisherUrl, backoff });
        }""",
        publisherUrl,
    )
    page.wait_for_function("window.sub.socket.state === 'open' && window.pub.socket.state === 'open'")
    page.wait_for_function("window.sub.position('a') !== null && window.sub.position('b') !== null")


def test_pulse_pubsub_resumes_with_nothing_lost_or_doubled(server: TwistdServer, pages: Callable[[str], Any]) -> None:
    """
    A publisher sends 300 numbered messages on two topics, one pair every
    5 ms; the proxy cuts the subscriber's connection twice meanwhile (and
    refuses it for a while). The subscriber's callbacks see every message
    exactly once, in order, with consecutive offsets, and no reset.
    """
    with CutProxy(server.port) as proxy:
        page = open_pubsub_page(pages, proxy.url())
        start_pubsub(page, f"ws://127.0.0.1:{server.port}/pubsub")
        page.evaluate(
            """() => {
                let n = 0;
                const timer = setInterval(() => {
                    window.pub.publish("a", n);
                    window.pub.publish("b", n);
                    if (++n === 300) clearInterval(timer);
                }, 5);
            }"""
        )
        for seen in (40, 160):
            page.wait_for_function(f"window.got.length >= {seen}")
            proxy.cut()
            page.wait_for_function("window.sub.socket.state === 'reconnecting'")
            page.wait_for_timeout(150)
            proxy.restore()
        page.wait_for_function("window.got.length >= 600", timeout=15000)
        page.wait_for_timeout(100)  # nothing more comes
        got = page.evaluate("window.got")
        assert page.evaluate("window.opens") == 3  # the first connection and two resumes
        for topic in ("a", "b"):
            mine = [(data, position) for name, data, position in got if name == topic]
            assert [data for data, _ in mine] == list(range(300)), topic
            offsets = [position["offset"] for _, position in mine]
            assert offsets == list(range(offsets[0], offsets[0] + 300)), topic
        assert page.evaluate("window.resets") == []


def test_pulse_pubsub_reports_a_lost_history_once_per_topic(server: TwistdServer, pages: Callable[[str], Any]) -> None:
    """
    After a server restart (a new epoch), C{onrecoveryfailed} is called once
    per topic, and the publications of the new server are delivered once.
    """
    page = open_pubsub_page(pages, server.url)
    url = f"ws://127.0.0.1:{server.port}/pubsub"
    start_pubsub(page, url)
    page.evaluate("window.pub.publish('a', 'before')")
    page.wait_for_function("window.got.length === 1")
    server.stop()
    page.wait_for_function("window.sub.socket.state === 'reconnecting'")
    server.start()
    page.wait_for_function("window.resets.length === 2")
    page.wait_for_function("window.pub.socket.state === 'open'")
    page.evaluate("window.pub.publish('a', 'after')")
    page.wait_for_function("window.got.length === 2")
    page.wait_for_timeout(100)
    got = page.evaluate("window.got")
    assert [(topic, data) for topic, data, _ in got] == [("a", "before"), ("a", "after")]
    assert got[1][2]["offset"] == 1 and got[1][2]["epoch"] != got[0][2]["epoch"]
    resets = page.evaluate("window.resets")
    assert sorted(topic for topic, _ in resets) == ["a", "b"]
    assert all(position["offset"] == 0 for _, position in resets)


def test_topic_cursor_follows_the_resume_rules(server: TwistdServer, pages: Callable[[str], Any]) -> None:
    """
    txpulse.js's L{TopicCursor}, message by message (the rules of the
    Python client's scripted tests): the answer of a first subscription
    sets the position; duplicates at the seam are dropped; a gap is
    reported, not delivered; deliveries before a resubscription's answer
    are early; C{recovered: false} and a new epoch are resets; messages
    without positions (an older server) are delivered.
    """
    page = open_pubsub_page(pages, server.url)
    results = page.evaluate(
        """() => {
            const { TopicCursor } = window.txpulse;
            const d = (offset, epoch = "e1") => ({ topic: "t", data: offset, offset, epoch });
            const c = new TopicCursor();
            const out = {};
            out.first = [c.subscribing(), c.answered({ subscribed: "t", offset: 2, epoch: "e1" }), c.position];
            out.live = [d(3), d(3), d(4), d(6)].map((m) => c.received(m));
            c.lost();
            out.since = c.subscribing();
            out.resumed = [
                c.received(d(5)),
                c.answered({ subscribed: "t", recovered: true, offset: 6, epoch: "e1" }),
                ...[d(4), d(5), d(6), d(6), d(7)].map((m) => c.received(m)),
            ];
            out.epoch = [c.received(d(1, "e2")), c.position];
            c.lost();
            c.subscribing();
            out.lost = [c.answered({ subscribed: "t", recovered: false, offset: 9, epoch: "e3" }), c.position];
            out.again = c.answered({ subscribed: "t", recovered: false, offset: 9, epoch: "e3" });
            const old = new TopicCursor();
            old.subscribing();
            out.old = [old.received({ topic: "t", data: 1 }, false), old.received({ topic: "t", data: 1 }, false)];
            return out;
        }"""
    )
    assert results["first"] == [None, False, {"offset": 2, "epoch": "e1"}]
    assert results["live"] == ["deliver", "duplicate", "deliver", "gap"]
    assert results["since"] == {"offset": 4, "epoch": "e1"}
    assert results["resumed"] == ["early", False, "duplicate", "deliver", "deliver", "duplicate", "deliver"]
    assert results["epoch"] == ["reset", {"offset": 1, "epoch": "e2"}]
    assert results["lost"] == [True, {"offset": 9, "epoch": "e3"}]
    assert results["again"] is False  # one report per answer
    assert results["old"] == ["deliver", "deliver"]
