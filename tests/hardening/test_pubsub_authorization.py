"""
The attacks of issue 12 (items 1 and 14) on C{twistd -n txpulse} as a user
runs it, with C{/chat} and C{/pubsub} protected by API keys and per-topic
rules (C{--topic-rules}): an unauthenticated or authenticated C{/pubsub}
client trying to read and forge a chat room, a key holder trying to speak
as another user, one trying to reach topics the rules forbid, and hostile
JSON. A legitimate chat member (alice) stays connected throughout and must
see exactly her room's real events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from ..support.processes import TwistdServer

KEYS = {"k-alice": "alice", "k-bob": "bob", "k-mallory": "mallory"}
RULES = {
    "/pubsub": [
        {"topic": "public/#", "subscribe": ["*", "anonymous"], "publish": ["*"]},
        {"topic": "public/x", "subscribe": ["anonymous"], "publish": ["anonymous"]},
        {"topic": "user/{identity}/#", "subscribe": ["*"], "publish": ["*"]},
    ],
    "/chat": [
        {"topic": "lobby", "subscribe": ["*"], "publish": ["*"]},
        {"topic": "staff", "subscribe": ["alice"], "publish": ["alice"]},
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwistdServer]:
    """
    C{twistd -n txpulse --protect /chat} with API keys and topic rules
    for both hub mounts; C{/pubsub} stays open (anonymous clients).
    """
    tmp = tmp_path_factory.mktemp("authz")
    (tmp / "keys.json").write_text(json.dumps(KEYS))
    (tmp / "rules.json").write_text(json.dumps(RULES))
    options = ("--auth-keys", str(tmp / "keys.json"), "--protect", "/chat", "--topic-rules", str(tmp / "rules.json"))
    with TwistdServer(tmp / "twistd.log", *options) as twistd:
        yield twistd


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwistdServer]:
    """
    The issue's set-up: C{twistd -n txpulse --protect /chat} with API keys
    and no topic rules; C{/pubsub} open to anyone.
    """
    tmp = tmp_path_factory.mktemp("plain")
    (tmp / "keys.json").write_text(json.dumps(KEYS))
    with TwistdServer(tmp / "twistd.log", "--auth-keys", str(tmp / "keys.json"), "--protect", "/chat") as twistd:
        yield twistd


def ws(server: TwistdServer, path: str, key: str | None = None) -> ClientConnection:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    url = f"ws://127.0.0.1:{server.port}{path}"
    return connect(url, additional_headers=headers, proxy=None, open_timeout=5, close_timeout=5)


def ask(conn: ClientConnection, request: Any) -> Any:
    conn.send(request if isinstance(request, str) else json.dumps(request))
    return json.loads(conn.recv(timeout=5))


def nothing_more(conn: ClientConnection) -> None:
    """
    Nothing else arrives: a ping round trip proves the connection alive and
    everything sent before it received.
    """
    conn.ping(b"sync").wait(5)
    with pytest.raises(TimeoutError):
        conn.recv(timeout=0.2)


def test_pubsub_cannot_read_or_forge_a_protected_chat_room(plain: TwistdServer) -> None:
    """
    The issue's attack, with no topic rules: an anonymous C{/pubsub} client
    subscribes to every spelling of the lobby it can (C{chat/lobby},
    C{lobby}; the chat namespace's broker channel is refused for its
    control character) and publishes forged messages to them: it receives
    none of alice's messages, and its forgeries never reach her. Alice
    sees only the room's real events, and stays connected.
    """
    with ws(plain, "/chat", "k-alice") as alice, ws(plain, "/pubsub") as spy:
        assert ask(alice, {"action": "join", "room": "lobby", "name": "alice"})["data"]["type"] == "join"
        for topic in ("chat/lobby", "lobby"):
            assert ask(spy, {"action": "subscribe", "topic": topic})["subscribed"] == topic
        for topic in ("chat\x1flobby", "chat\x00lobby"):
            assert "control characters" in ask(spy, {"action": "subscribe", "topic": topic})["error"]
        forged = {"type": "message", "name": "alice", "text": "forged", "time": 0}
        for topic in ("chat/lobby", "lobby"):
            spy.send(json.dumps({"action": "publish", "topic": topic, "data": forged}))
        alice.send(json.dumps({"action": "say", "text": "secret"}))
        said = json.loads(alice.recv(timeout=5))
        assert said["topic"] == "lobby" and said["data"]["text"] == "secret"
        nothing_more(alice)
        # The spy receives its own forgeries (it subscribed to those topics
        # of /pubsub), and nothing of the chat.
        received = [json.loads(spy.recv(timeout=5)) for _ in range(2)]
        assert [m["data"]["text"] for m in received] == ["forged", "forged"]
        nothing_more(spy)


def test_a_key_holder_cannot_speak_as_someone_else(server: TwistdServer) -> None:
    """
    Bob, joining as "alice", is told his name is his identity; everyone
    sees "bob" join and speak, never "alice".
    """
    with ws(server, "/chat", "k-alice") as alice, ws(server, "/chat", "k-bob") as bob:
        ask(alice, {"action": "join", "room": "lobby", "name": "alice"})
        notice = ask(bob, {"action": "join", "room": "lobby", "name": "alice"})
        assert notice["name"] == "bob" and "signed in as 'bob'" in notice["notice"]
        bob.send(json.dumps({"action": "say", "text": "I am alice"}))
        seen = [json.loads(alice.recv(timeout=5))["data"] for _ in range(2)]
        assert [(e["type"], e["name"]) for e in seen] == [("join", "bob"), ("message", "bob")]
        nothing_more(alice)


def test_rules_keep_key_holders_to_their_topics(server: TwistdServer) -> None:
    """
    The rules hold on both mounts: mallory may not join the staff room or
    subscribe to another user's topics, may use her own and the public
    ones; an anonymous client may read public topics but not publish; each
    refusal is an error reply (the connection stays) and a log line naming
    the identity.
    """
    with ws(server, "/chat", "k-mallory") as mallory:
        assert ask(mallory, {"action": "join", "room": "staff"}) == {"error": "not allowed to join 'staff'"}
        assert ask(mallory, {"action": "join", "room": "lobby"})["data"]["name"] == "mallory"
    with ws(server, "/pubsub") as anonymous:
        assert "not allowed" in ask(anonymous, {"action": "subscribe", "topic": "user/alice/inbox"})["error"]
        assert "not allowed" in ask(anonymous, {"action": "publish", "topic": "public/y", "data": 1})["error"]
        assert ask(anonymous, {"action": "subscribe", "topic": "public/y"})["subscribed"] == "public/y"
        nothing_more(anonymous)
    with pytest.raises(InvalidStatus):
        ws(server, "/chat")  # no key: 401 before any room
    assert "Refused subscribe on topic 'staff'" in server.output() and "'mallory'" in server.output()


@pytest.mark.parametrize(
    "message",
    [
        '{"action": "publish", "topic": "public/x", "data": NaN}',
        '{"action": "publish", "topic": "public/x", "data": -Infinity}',
        "[" * 100_000,
    ],
)
def test_hostile_json_is_an_error_reply_not_a_traceback(server: TwistdServer, message: str) -> None:
    """
    C{NaN}/C{Infinity} and 100,000 nested arrays get C{{"error"}}; the
    connection stays open and the log has no traceback.
    """
    with ws(server, "/pubsub") as client:
        assert "not valid JSON" in ask(client, message)["error"]
        assert ask(client, {"action": "subscribe", "topic": "public/x"})["subscribed"] == "public/x"
        delivery = ask(client, {"action": "publish", "topic": "public/x", "data": 1.5})
        assert (delivery["topic"], delivery["data"]) == ("public/x", 1.5)
    with ws(server, "/chat", "k-alice") as alice:
        assert "JSON object" in ask(alice, message)["error"]
        assert ask(alice, {"action": "join", "room": "lobby"})["data"]["type"] == "join"
    assert "Traceback" not in server.output() and "RecursionError" not in server.output()
