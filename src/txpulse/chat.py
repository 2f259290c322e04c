# -*- test-case-name: tests.test_chat -*-
"""
The chat demo mounted at C{/chat}: rooms on top of the pub/sub L{Hub} (a room
is the hub topic C{chat/ROOM}), so it scales out through the same broker.

Wire format (JSON text messages)::

    client -> server   {"action": "join", "room": R, "name": N}     once, first
                       {"action": "say", "text": T}
    server -> client   {"topic": "chat/R", "data": EVENT}            hub envelopes
                       {"error": "..."}

where EVENT is C{{"type": "join" | "leave", "name": N, "time": SECONDS}} or
C{{"type": "message", "name": N, "text": T, "time": SECONDS}}. Names and texts
are plain text: clients must display them as text, never as HTML.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from twisted.python.failure import Failure

from .hub import Hub, HubError

__all__ = ["ChatFactory", "ChatProtocol"]

MAX_NAME = 32
MAX_ROOM = 64
MAX_TEXT = 2000


class ChatProtocol:
    """
    One chat participant.
    """

    def __init__(self, hub: Hub, now: Callable[[], float]) -> None:
        self._hub = hub
        self._now = now
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
        self._hub.publish(self.topic, {"type": kind, "name": self.name, "time": round(self._now(), 3), **fields})

    def textMessageReceived(self, message: str) -> None:
        try:
            request = json.loads(message)
            if not isinstance(request, dict):
                raise ValueError
        except ValueError:
            self._error("message must be a JSON object")
            return
        action = request.get("action")
        try:
            if action == "join":
                self._join(request.get("room"), request.get("name"))
            elif action == "say":
                self._say(request.get("text"))
            else:
                raise HubError("action must be 'join' or 'say'")
        except HubError as refused:
            self._error(str(refused))

    def _join(self, room: object, name: object) -> None:
        if self.topic is not None:
            raise HubError("already joined")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise HubError(f"name must be 1 to {MAX_NAME} characters")
        if not isinstance(room, str) or not room.strip() or len(room) > MAX_ROOM:
            raise HubError(f"room must be 1 to {MAX_ROOM} characters")
        topic = f"chat/{room.strip()}"
        authorize = self._hub.authorize
        if authorize is not None and not authorize(getattr(self.transport, "identity", None), "subscribe", topic):
            raise HubError(f"not allowed to join {room!r}")
        self._hub.subscribe(self.transport, topic)
        self.name, self.topic = name.strip(), topic
        self._event("join")

    def _say(self, text: object) -> None:
        if self.topic is None:
            raise HubError("join a room first")
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
            self._hub.unsubscribeAll(self.transport)
            self._event("leave")


class ChatFactory:
    """
    Builds a L{ChatProtocol} per connection, all on one L{Hub}.
    """

    def __init__(self, hub: Hub, now: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self._now = now

    def buildProtocol(self, request: object) -> ChatProtocol:
        return ChatProtocol(self.hub, self._now)
