"""
The chat page (C{/chat.html}, on the C{/chat} mount) end to end: the real
C{twistd txpulse} in a subprocess, and one headless Chromium context per user,
so that each has its own cookies, storage and connection, like two people.

Skipped like the rest of the browser suite when Chromium or playwright is
missing (a failure in CI). Every run writes C{artifacts/chat.png}: alice's
view of a conversation with bob.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from txpulse.server.auth import generateKeySet

from ..support.processes import TwistdServer
from .conftest import TUNING, WAIT_MS, skip_without_browser, twistd

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]

#: A time zone without daylight saving and off UTC by a non-whole hour, so
#: that the page's local HH:MM:SS cannot match the UTC time by accident.
ZONE_ID, ZONE = "Asia/Kolkata", timezone(timedelta(hours=5, minutes=30))


class Chatter:
    """
    One user: a page of the chat in a browser context of its own.
    """

    def __init__(self, page: Any) -> None:
        self.page = page
        self.messages = page.locator("#messages")

    def join(self, name: str, room: str) -> None:
        """
        Fill in the join form and submit it; wait until the page shows the
        room (not until the server accepted: see L{wait_notice}).
        """
        self.page.fill("#name", name)
        self.page.fill("#room", room)
        self.page.click("#join")
        expect(self.page.locator("#room-card")).to_be_visible()

    def say(self, text: str) -> None:
        """
        Send C{text} and wait until the page took it (the box is emptied).
        """
        expect(self.page.locator("#send")).to_be_enabled()
        self.page.fill("#text", text)
        self.page.click("#send")
        expect(self.page.locator("#text")).to_have_value("")

    def notice(self, text: str) -> Any:
        """
        The room notices (not the page's own connection notices) reading
        exactly C{text}.
        """
        return self.messages.locator("li.notice:not(.local) .text", has_text=re.compile(f"^{re.escape(text)}$"))

    def wait_notice(self, text: str, count: int = 1) -> None:
        """
        Wait until the page shows C{count} room notices reading C{text}.
        """
        expect(self.notice(text)).to_have_count(count)

    def message(self, text: str) -> Any:
        """
        The message entries whose text is exactly C{text}.
        """
        return self.messages.locator("li.message").filter(
            has=self.page.locator(".text", has_text=re.compile(f"^{re.escape(text)}$"))
        )

    def entries(self) -> list[str]:
        """
        Every entry of the list, as its visible text, oldest first.
        """
        texts: list[str] = self.messages.locator("li").all_inner_texts()
        return [" ".join(text.split()) for text in texts]


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwistdServer]:
    """
    One server for the tests that do not restart it; each uses its own rooms.
    """
    with twistd(tmp_path_factory.mktemp("chat") / "twistd.log") as server:
        yield server


@pytest.fixture
def people(browser: Any) -> Iterator[Callable[..., Chatter]]:
    """
    Opens the chat page of a server for a new user (a new browser context);
    fails the test if any page threw an uncaught exception.
    """
    contexts: list[Any] = []
    errors: list[str] = []

    def open_chat(server: TwistdServer, **options: Any) -> Chatter:
        context = browser.new_context(viewport={"width": 900, "height": 640}, **options)
        contexts.append(context)
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url + "chat.html" + TUNING)
        return Chatter(page)

    try:
        yield open_chat
    finally:
        for context in contexts:
            context.close()
    assert errors == [], f"uncaught errors in the pages: {errors}"


def _room() -> str:
    return f"room-{uuid.uuid4().hex[:8]}"


def test_two_users_see_joins_messages_and_leaves(chat_server: TwistdServer, people: Callable[..., Chatter]) -> None:
    """
    Two users in one room see each other join, exchange messages shown with
    sender and local time, and one sees the other leave when that page closes.
    """
    room = _room()
    alice = people(chat_server)
    bob = people(chat_server, timezone_id=ZONE_ID)
    expect(alice.page.locator("#room")).to_have_value("lobby")

    alice.join("alice", room)
    alice.wait_notice("alice joined")
    expect(alice.page.locator("#status")).to_have_attribute("data-state", "open")
    expect(alice.page.locator("#status")).to_have_text("connected")
    expect(alice.page.locator("#room-name")).to_have_text(room)
    expect(alice.page.locator("#me")).to_have_text("alice")

    bob.join("bob", room)
    alice.wait_notice("bob joined")
    bob.wait_notice("bob joined")

    # Bob came second, so he sees alice join when she leaves and comes back.
    alice.page.click("#leave")
    expect(alice.page.locator("#join-card")).to_be_visible()
    expect(alice.page.locator("#status")).to_have_attribute("data-state", "closed")
    bob.wait_notice("alice left")
    expect(alice.page.locator("#room")).to_have_value(room)
    alice.page.click("#join")
    bob.wait_notice("alice joined")
    alice.wait_notice("alice joined")
    assert alice.entries()[0].endswith("alice joined"), alice.entries()  # a fresh list

    before = datetime.now(UTC)
    alice.say("hello bob")
    entry = bob.message("hello bob")
    expect(entry).to_have_count(1)
    expect(entry.locator(".name")).to_have_text("alice")
    expect(entry.locator(".time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    # The time is the server's, shown in bob's local time zone.
    sent = datetime.fromisoformat(entry.locator(".time").get_attribute("datetime"))
    assert before - timedelta(seconds=5) <= sent <= datetime.now(UTC) + timedelta(seconds=5), sent
    assert entry.locator(".time").inner_text() == sent.astimezone(ZONE).strftime("%H:%M:%S")
    expect(alice.message("hello bob").locator(".name")).to_have_text("alice")

    bob.say("hi alice, how is Twisted?")
    expect(alice.message("hi alice, how is Twisted?").locator(".name")).to_have_text("bob")
    alice.say("Deferred, as always.")
    expect(bob.message("Deferred, as always.")).to_have_count(1)

    artifact = ROOT / "artifacts" / "chat.png"
    artifact.parent.mkdir(exist_ok=True)
    alice.page.screenshot(path=str(artifact))

    bob.page.close()
    alice.wait_notice("bob left")
    assert alice.entries()[-1].endswith("bob left"), alice.entries()
    assert [text.split(" ", 1)[1] for text in alice.entries()] == [
        "alice joined",
        "alice hello bob",
        "bob hi alice, how is Twisted?",
        "alice Deferred, as always.",
        "bob left",
    ]


def test_user_text_is_shown_as_text_not_html(chat_server: TwistdServer, people: Callable[..., Chatter]) -> None:
    """
    Names and messages that look like HTML are shown literally: no element
    is created from them and no script runs.
    """
    room = _room()
    alice = people(chat_server)
    eve = people(chat_server)
    alice.join("alice", room)
    alice.wait_notice("alice joined")

    evil_name = "<i>eve</i>"
    markup = "<b>x</b>"
    script = "<img src=x onerror=window.pwned=1>"
    eve.join(evil_name, room)
    alice.wait_notice(f"{evil_name} joined")
    expect(eve.page.locator("#me")).to_have_text(evil_name)
    eve.say(markup)
    eve.say(script)

    for page in (alice, eve):
        expect(page.message(markup).locator(".name")).to_have_text(evil_name)
        expect(page.message(script)).to_have_count(1)
        assert page.messages.locator("b, i, img").count() == 0
        assert page.page.locator("body img, body b, body i").count() == 0
        assert page.page.evaluate("window.pwned") is None


def test_other_rooms_do_not_see_messages(chat_server: TwistdServer, people: Callable[..., Chatter]) -> None:
    """
    Messages and notices stay in their room: a user in another room of the
    same server sees none of them, and the room does not see hers.
    """
    room, other = _room(), _room()
    alice = people(chat_server)
    bob = people(chat_server)
    carol = people(chat_server)
    alice.join("alice", room)
    alice.wait_notice("alice joined")
    carol.join("carol", other)
    carol.wait_notice("carol joined")
    bob.join("bob", room)
    alice.wait_notice("bob joined")

    alice.say("only for this room")
    expect(bob.message("only for this room")).to_have_count(1)
    # Carol's own message comes back after anything sent to her before it.
    carol.say("anyone here?")
    expect(carol.message("anyone here?")).to_have_count(1)
    bob.say("done")
    expect(alice.message("done")).to_have_count(1)

    assert [entry.split(" ", 1)[1] for entry in carol.entries()] == ["carol joined", "carol anyone here?"]
    for user in (alice, bob):
        assert not any("carol" in entry for entry in user.entries()), user.entries()


def test_refusals_are_shown(chat_server: TwistdServer, people: Callable[..., Chatter]) -> None:
    """
    A join the server refuses brings the join form back with the server's
    reason; an error reply while in the room is shown under the message box.
    """
    alice = people(chat_server)
    # Blank passes the form's "required" check, but not the server's.
    alice.page.fill("#name", "   ")
    alice.page.click("#join")
    expect(alice.page.locator("#join-error")).to_have_text("Could not join: name must be 1 to 32 characters")
    expect(alice.page.locator("#join-card")).to_be_visible()
    expect(alice.page.locator("#room-card")).to_be_hidden()
    expect(alice.page.locator("#status")).to_have_attribute("data-state", "closed")

    alice.join("alice", _room())
    alice.wait_notice("alice joined")
    expect(alice.page.locator("#join-error")).to_be_hidden()
    alice.page.evaluate("""() => window.chat.session.pulse.send(JSON.stringify({action: "dance"}))""")
    expect(alice.page.locator("#error")).to_have_text("action must be 'join' or 'say'")
    # Still in the room: the next message goes through and clears the error.
    alice.say("sorry")
    expect(alice.message("sorry")).to_have_count(1)
    expect(alice.page.locator("#error")).to_be_hidden()


def test_pages_rejoin_after_the_server_restarts(server: TwistdServer, people: Callable[..., Chatter]) -> None:
    """
    The server forgets who joined when connections drop; each page joins its
    room again by itself on reconnection, so the conversation goes on.
    """
    room = _room()
    alice = people(server)
    bob = people(server)
    alice.join("alice", room)
    alice.wait_notice("alice joined")
    bob.join("bob", room)
    alice.wait_notice("bob joined")

    server.stop()
    for user in (alice, bob):
        expect(user.page.locator("#status")).to_have_attribute("data-state", "reconnecting")
        expect(user.page.locator("#send")).to_be_disabled()
        expect(user.messages.locator("li.local.down .text")).to_have_text("connection lost, reconnecting…")

    server.start()
    for user, name in ((alice, "alice"), (bob, "bob")):
        expect(user.page.locator("#status")).to_have_attribute("data-state", "open")
        expect(user.messages.locator("li.local.up .text")).to_have_text("reconnected")
        # The server's own join notice: this page is in the room again.
        user.wait_notice(f"{name} joined", count=2)

    alice.say("still there?")
    expect(bob.message("still there?").locator(".name")).to_have_text("alice")
    bob.say("yes")
    expect(alice.message("yes").locator(".name")).to_have_text("bob")


@pytest.fixture
def protected(tmp_path: Path) -> Iterator[TwistdServer]:
    """
    A server whose C{/chat} requires authentication: API key C{k-alice} for
    alice, browser tokens that live one second.
    """
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"k-alice": "alice"}))
    jwkFile = tmp_path / "jwk.json"
    jwkFile.write_text(generateKeySet())
    options = ("--auth-keys", str(keys), "--jwk", str(jwkFile), "--protect", "/chat", "--token-lifetime", "1")
    with twistd(tmp_path / "twistd.log", *options) as server:
        yield server


def test_protected_chat_with_an_access_key(protected: TwistdServer, people: Callable[..., Chatter]) -> None:
    """
    With an access key the page fetches a token from C{/@wstoken} and gets
    in; after the server restarts (the first token has long expired) it
    fetches a fresh one and gets back in by itself.
    """
    room = _room()
    alice = people(protected)
    alice.page.fill("#key", "k-alice")
    alice.join("alice", room)
    alice.wait_notice("alice joined")
    alice.say("authenticated")
    expect(alice.message("authenticated")).to_have_count(1)
    assert "k-alice" not in alice.page.url, "the key must not end up in the address"

    protected.stop()
    expect(alice.page.locator("#status")).to_have_attribute("data-state", "reconnecting")
    alice.page.wait_for_timeout(1500)  # the token used so far expires
    protected.start()
    expect(alice.page.locator("#status")).to_have_attribute("data-state", "open")
    alice.wait_notice("alice joined", count=2)


def test_protected_chat_names_you_by_your_key(protected: TwistdServer, people: Callable[..., Chatter]) -> None:
    """
    On a protected server the name is the key's identity: joining with
    alice's key as "mallory" shows the server's notice, "as alice" on the
    page, and alice (not mallory) joining and speaking, marked as mine.
    """
    room = _room()
    alice = people(protected)
    alice.page.fill("#key", "k-alice")
    alice.join("mallory", room)
    alice.wait_notice("alice joined")
    expect(alice.page.locator("#me")).to_have_text("alice")
    expect(alice.messages.locator("li.notice.local", has_text="signed in as 'alice'")).to_have_count(1)
    alice.say("who am I")
    expect(alice.message("who am I").locator(".name")).to_have_text("alice")
    expect(alice.messages.locator("li.mine")).to_have_count(1)
    expect(alice.notice("mallory joined")).to_have_count(0)


def test_protected_chat_refuses_a_wrong_key_and_no_key(protected: TwistdServer, people: Callable[..., Chatter]) -> None:
    """
    A wrong key brings the page back to the join form with the reason; no
    key at all cannot connect, and the page says a key may be needed.
    """
    wrong = people(protected)
    wrong.page.fill("#name", "mallory")
    wrong.page.fill("#key", "not-a-key")
    wrong.page.click("#join")
    expect(wrong.page.locator("#join-error")).to_have_text("Could not join: the access key was refused")
    expect(wrong.page.locator("#join-card")).to_be_visible()
    expect(wrong.page.locator("#status")).to_have_attribute("data-state", "closed")

    keyless = people(protected)
    keyless.join("eve", _room())
    expect(keyless.page.locator("#error")).to_contain_text("requires an access key")
    expect(keyless.page.locator("#status")).to_have_attribute("data-state", "reconnecting")


def test_protected_chat_explains_a_refused_token(protected: TwistdServer, people: Callable[..., Chatter]) -> None:
    """
    A token the WebSocket endpoint refuses (here the token service is made
    to hand out a forged one) cannot open the room; the page says why it
    keeps retrying instead of staying silent.
    """
    forged = people(protected)
    forged.page.route(
        "**/@wstoken",
        lambda route: route.fulfill(status=200, content_type="application/json", body='{"token": "forged"}'),
    )
    forged.page.fill("#key", "k-alice")
    forged.join("alice", _room())
    expect(forged.page.locator("#error")).to_contain_text("may not accept its tokens")
    expect(forged.page.locator("#status")).to_have_attribute("data-state", "reconnecting")


def test_protected_chat_explains_a_failing_token_service(
    protected: TwistdServer, people: Callable[..., Chatter]
) -> None:
    """
    When the token service itself fails (here made to answer 500), the page
    says it could not get a token, not that the server refused one.
    """
    broken = people(protected)
    broken.page.route("**/@wstoken", lambda route: route.fulfill(status=500, body="boom"))
    broken.page.fill("#key", "k-alice")
    broken.join("alice", _room())
    expect(broken.page.locator("#error")).to_contain_text(
        "Could not get an access token (no token: the token service answered 500)"
    )
    expect(broken.page.locator("#status")).to_have_attribute("data-state", "reconnecting")
