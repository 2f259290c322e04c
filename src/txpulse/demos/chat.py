# -*- test-case-name: tests.demos.test_chat,tests.demos.test_chat_resume -*-
"""
The chat demo mounted at C{/chat}: rooms on top of the pub/sub L{Hub}, so it
scales out through the same broker. A room R is topic R of the hub
namespace C{"chat"} (L{Hub.namespace}), which no other mount can reach: the
chat's events come from this protocol only, never from a C{/pubsub} client.

Wire format (JSON text messages)::

    client -> server   {"action": "join", "room": R, "name": N}     once, first
                       {"action": "join", "room": R, "name": N, "since": null | {"offset": O, "epoch": E}}
                       {"action": "say", "text": T}
    server -> client   {"subscribed": R, "offset": TOP, "epoch": E}  answers a join with "since"
                       {"subscribed": R, "recovered": true|false, "offset": TOP, "epoch": E}
                       {"topic": R, "data": EVENT, "offset": O, "epoch": E}
                                                                    hub envelopes
                       {"name": N, "notice": "..."}                 the name was set
                                                                     by the server
                       {"error": "..."}

On a connection with an identity (a mount protected by an accept hook), the
name is the identity: a C{name} that differs is overridden, and the client
is told so (the C{"notice"} reply) before its join event; C{name} may then
be left out. Joining needs permission to C{"subscribe"} to the room, saying
something permission to C{"publish"} (the namespace's C{authorize} hook).

A join with C{"since"} (a client that resumes, as C{chat.js} does) is a
pub/sub subscription with positions (L{txpulse.pubsub.protocol}): it is
answered with the room's position before any event, and from a position
C{{"offset", "epoch"}} the events the client missed follow the answer
(C{"recovered": true}), or the client is told it cannot have them
(C{"recovered": false}); C{null} asks for the answer only (a first join).
A join without C{"since"} gets no answer, as before.

where EVENT is C{{"type": "join" | "leave", "name": N, "time": SECONDS}} or
C{{"type": "message", "name": N, "text": T, "time": SECONDS}}. Names and texts
are plain text: clients must display them as text, never as HTML.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ..pubsub.hub import PUBLISH_FAILED, Authorize, Hub, HubError, Namespace, loadJSON
from ..pubsub.protocol import parseSince, refuse

__all__ = ["ChatFactory", "ChatProtocol"]

MAX_NAME = 32
MAX_ROOM = 64
MAX_TEXT = 2000


class ChatProtocol:
    """
    One chat participant.
    """

    def __init__(self, topics: Namespace, now: Callable[[], float]) -> None:
        self._topics = topics
        self._now = now
        self._maySay = False
        self._refusalsLogged = 0
        self.transport: Any = None
        self.name: str | None = None
        self.topic: str | None = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def _error(self, message: str) -> None:
        self.transport.sendTextMessage(json.dumps({"error": message}))

    def _event(self, kind: str, **fields: Any) -> None:
        assert self.topic is not None
        topics = self._topics
        published = topics.publish(
            self.topic, {"type": kind, "name": self.name, "time": round(self._now(), 3), **fields}
        )
        if isinstance(published, Deferred):
            # Failed by the broker (Redis given up on): counted and logged
            # in aggregate by the hub, not "Unhandled error in Deferred".
            published.addErrback(partial(topics.hub.noteBrokerFailure, PUBLISH_FAILED, topics.channel(self.topic)))

    def textMessageReceived(self, message: str) -> None:
        try:
            request = loadJSON(message)
            if not isinstance(request, dict):
                raise ValueError
        except ValueError:
            self._error("message must be a JSON object")
            return
        action = request.get("action")
        try:
            if action == "join":
                self._join(request.get("room"), request.get("name"), "since" in request, request.get("since"))
            elif action == "say":
                self._say(request.get("text"))
            else:
                raise HubError("action must be 'join' or 'say'")
        except HubError as refused:
            self._error(str(refused))

    def _join(self, room: object, name: object, resume: bool = False, since: object = None) -> None:
        if self.topic is not None:
            raise HubError("already joined")
        position = parseSince(since) if resume else None
        identity = getattr(self.transport, "identity", None)
        overridden = False
        if identity is not None:
            # Authenticated: one speaks as oneself, whatever the page asked.
            overridden = name is not None and name != str(identity)
            name = str(identity)
        elif not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise HubError(f"name must be 1 to {MAX_NAME} characters")
        if not isinstance(room, str) or not room.strip() or len(room) > MAX_ROOM:
            raise HubError(f"room must be 1 to {MAX_ROOM} characters")
        topic = self._topics.checkTopic(room.strip())
        if refuse(self._topics, self.transport, "subscribe", topic, self._refusalsLogged):
            self._refusalsLogged += 1
            raise HubError(f"not allowed to join {room!r}")
        self._topics.subscribe(self.transport, topic, position, answer=resume)
        self._maySay = self._topics.allowed(identity, "publish", topic)
        self.name, self.topic = name.strip(), topic
        if overridden:
            self.transport.sendTextMessage(
                json.dumps({"name": self.name, "notice": f"signed in as {self.name!r}: you speak under that name"})
            )
        self._event("join")

    def _say(self, text: object) -> None:
        if self.topic is None:
            raise HubError("join a room first")
        if not self._maySay:
            if refuse(self._topics, self.transport, "publish", self.topic, self._refusalsLogged):
                self._refusalsLogged += 1
                raise HubError(f"not allowed to speak in {self.topic!r}")
        if not isinstance(text, str) or not text.strip():
            raise HubError("text must be a non-empty string")
        if len(text) > MAX_TEXT:
            raise HubError(f"text longer than {MAX_TEXT} characters")
        self._event("message", text=text)

    def bytesMessageReceived(self, data: bytes) -> None:
        self._error("binary messages are not part of the chat protocol")

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        if self.topic is not None:
            self._topics.hub.unsubscribeAll(self.transport)
            self._event("leave")


class ChatFactory:
    """
    Builds a L{ChatProtocol} per connection, all on one L{Hub}.

    @ivar hub: the L{Hub}.
    @ivar topics: the L{Namespace} of the rooms.
    """

    def __init__(
        self,
        hub: Hub,
        now: Callable[[], float] = time.time,
        *,
        namespace: str = "chat",
        authorize: Authorize | None = None,
    ) -> None:
        """
        @param now: the clock of the events' C{time}.
        @param namespace: the hub namespace of the rooms (each room is a topic
            of it).
        @param authorize: who may join (C{"subscribe"}) and speak
            (C{"publish"}) in which room (default: the hub's C{authorize}).
        """
        self.hub = hub
        self.topics = hub.namespace(namespace, authorize)
        self._now = now

    def buildProtocol(self, request: object) -> ChatProtocol:
        return ChatProtocol(self.topics, self._now)
