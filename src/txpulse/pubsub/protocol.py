# -*- test-case-name: tests.pubsub.test_hub -*-
"""
The JSON protocol mounted at C{/pubsub}: one L{PubSubProtocol} per
connection, speaking to the topics of one L{Namespace} of a L{Hub}.

Wire format (JSON text messages)::

    client -> server   {"action": "subscribe",   "topic": T}
                       {"action": "subscribe",   "topic": T, "since": {"offset": N, "epoch": E}}
                       {"action": "unsubscribe", "topic": T}
                       {"action": "publish",     "topic": T, "data": D}
    server -> client   {"subscribed": T, "offset": TOP, "epoch": E}
                                                     answers a subscribe, before any delivery
                       {"subscribed": T, "recovered": true|false, "offset": TOP, "epoch": E}
                                                     answers a subscribe with "since"
                       {"topic": T, "data": D, "offset": N, "epoch": E}
                                                     to every subscriber of T
                       {"error": "..."}              to a client whose message was refused

Positions (C{offset}, C{epoch}) and recovery are additions: a client that
ignores them and the C{"subscribed"} answer works as before. With
C{"recovered": true} the publications N+1 ... TOP follow the answer, in
order, then the live ones, with no gap and no duplicate; with
C{"recovered": false} (the epoch changed, N+1 is no longer kept, or N is
ahead of TOP) only the live ones follow, and the client reloads its
state. A broker without positions answers C{{"subscribed": T}} (and
C{"recovered": false} to a C{since}), and delivers C{{"topic", "data"}}.

Limits per connection: at most C{maxTopicsPerConnection}
(C{--max-topics}) subscriptions at a time, and as many distinct topics
published to over the connection's life (a topic it is subscribed to when
it publishes does not count: see L{PubSubProtocol}); past either, the
request is refused with an C{{"error"}} reply. A publication is not
answered: if the broker fails it (e.g. Redis unreachable past its
outage buffer), the hub counts and logs it in aggregate
(L{txpulse.pubsub.hub.Hub.noteBrokerFailure}).

Requests are parsed strictly (L{loadJSON}); a refused request gets an
C{{"error"}} reply and the connection stays open: a C{since} that is not
C{null} or C{{"offset": N, "epoch": E}}, with N a whole number (0 or
more) and E an epoch (L{txpulse.pubsub.history.EPOCH}), is refused so.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..logs.peers import peerOf
from .history import Position, isEpoch
from .hub import PUBLISH_FAILED, Authorize, Hub, HubError, Namespace, loadJSON

__all__ = ["PubSubFactory", "PubSubProtocol", "refuse", "parseSince", "MAX_REFUSALS_LOGGED"]


def parseSince(since: object) -> Position | None:
    """
    The position of a subscribe request's C{"since"}: C{None} for C{null}.

    @raise HubError: for anything but C{null} or an object with exactly an
        integer C{"offset"} (0 or more) and an epoch string C{"epoch"}.
    """
    if since is None:
        return None
    if not isinstance(since, dict) or set(since) != {"offset", "epoch"}:
        raise HubError('since must be {"offset": N, "epoch": E}')
    offset, epoch = since["offset"], since["epoch"]
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise HubError("since.offset must be a whole number, 0 or more")
    if not isEpoch(epoch):
        raise HubError("since.epoch must be an epoch string, as the server sent it")
    return Position(offset, epoch)


_log = Logger()


class PubSubProtocol:
    """
    One client of the hub, speaking the JSON wire format in the module
    docstring, on the topics of one L{Namespace}.

    Topic cap: at most the hub's C{maxTopicsPerConnection} (C{--max-topics},
    100 by default) subscriptions at a time, and as many distinct topics
    published to over the connection's life; a topic the connection is
    subscribed to when it publishes is not counted, and publishing again
    to a counted one costs nothing. One more gets
    C{{"error": "published to too many topics (limit N)"}}; the
    connection stays open.
    """

    def __init__(self, topics: Namespace, maxPublishSize: int) -> None:
        self._topics = topics
        self._maxPublishSize = maxPublishSize
        self._refusalsLogged = 0
        #: The topics this connection published to (see L{_countPublished}).
        self._published: set[str] = set()
        self.transport: Any = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def _error(self, message: str) -> None:
        self.transport.sendTextMessage(json.dumps({"error": message}))

    def textMessageReceived(self, message: str) -> Deferred[None] | None:
        """
        Serve one request. A subscription whose history or replay is not
        written yet returns a L{Deferred} (see L{Namespace.subscribe}):
        the wire reads nothing more from this client until it fires, so a
        client can have at most one replay in progress (its next requests
        wait in TCP).
        """
        try:
            request = loadJSON(message)
        except ValueError:
            self._error("message is not valid JSON")
            return None
        if not isinstance(request, dict):
            self._error("message must be a JSON object")
            return None
        action = request.get("action")
        topics = self._topics
        try:
            topic = topics.checkTopic(request.get("topic"))
            if action == "subscribe":
                since = parseSince(request.get("since"))
                # The same check for a recovery as for any subscription: no
                # replay of a topic the client may not subscribe to.
                self._authorize("subscribe", topic)
                return topics.subscribe(self.transport, topic, since, answer=True)
            elif action == "unsubscribe":
                topics.unsubscribe(self.transport, topic)
            elif action == "publish":
                if "data" not in request:
                    raise HubError("publish needs 'data'")
                self._authorize("publish", topic)
                if len(message) > self._maxPublishSize:
                    raise HubError(f"published message larger than {self._maxPublishSize} bytes")
                self._countPublished(topic)
                try:
                    published = topics.publish(topic, request["data"])
                except ValueError as error:
                    raise HubError(str(error)) from None
                if isinstance(published, Deferred):
                    # The broker's answer (a Redis outage it gave up on, a
                    # reply lost): the client asked for no answer, so the
                    # failure is only counted and logged in aggregate
                    # (not left to "Unhandled error in Deferred").
                    published.addErrback(self._publishFailed, topics.channel(topic))
            else:
                raise HubError("action must be 'subscribe', 'unsubscribe' or 'publish'")
        except HubError as refused:
            self._error(str(refused))
        return None

    def _countPublished(self, topic: str) -> None:
        """
        Count C{topic} among the topics this connection published to: at
        most C{maxTopicsPerConnection} (C{--max-topics}) distinct ones
        over the connection's life, not counting those it is subscribed to
        when it publishes (they count as subscriptions). Each new topic
        costs the broker a position, and a history, for the history's
        ttl (in Redis: keys), so one connection must not make them by the
        hundred thousand.

        @raise HubError: for one topic too many.
        """
        published = self._published
        if topic in published:
            return
        topics = self._topics
        if topics.channel(topic) in topics.hub._subscriptions.get(self.transport, ()):
            return
        limit = topics.hub.maxTopicsPerConnection
        if len(published) >= limit:
            raise HubError(f"published to too many topics (limit {limit})")
        published.add(topic)

    def _publishFailed(self, failure: Failure, channel: str) -> None:
        self._topics.hub.noteBrokerFailure(PUBLISH_FAILED, channel, failure)

    def _authorize(self, action: str, topic: str) -> None:
        if not refuse(self._topics, self.transport, action, topic, self._refusalsLogged):
            return
        self._refusalsLogged += 1
        raise HubError(f"not allowed to {action} to {topic!r}")

    def bytesMessageReceived(self, data: bytes) -> None:
        self._error("binary messages are not part of the pub/sub protocol")

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        if self.transport is not None:
            self._topics.hub.unsubscribeAll(self.transport)


#: Refusals logged per connection; the ones after are not (a client looping
#: on a refused topic must not flood the log).
MAX_REFUSALS_LOGGED = 3


def refuse(topics: Namespace, transport: Any, action: str, topic: str, logged: int) -> bool:
    """
    Whether the connection on C{transport} is refused C{action} on C{topic}
    by the namespace's authorization (its C{identity} is what the accept
    hook attached); a refusal is logged, naming the peer and the identity,
    unless C{logged} refusals of this connection already were.
    """
    identity = getattr(transport, "identity", None)
    if topics.allowed(identity, action, topic):
        return False
    if logged < MAX_REFUSALS_LOGGED:
        _log.info(
            "Refused {action} on topic {topic!r} (namespace {namespace!r}) to {peer}, identity {identity!r}{more}",
            action=action,
            topic=topic,
            namespace=topics.name,
            peer=peerOf(transport),
            identity=identity,
            more="; further refusals on this connection are not logged" if logged + 1 == MAX_REFUSALS_LOGGED else "",
        )
    return True


class PubSubFactory:
    """
    Builds a L{PubSubProtocol} per connection to a shared L{Hub}: mount it
    with C{WebSocketResource(PubSubFactory(hub))}.

    @ivar hub: the L{Hub}.
    @ivar topics: the L{Namespace} its clients use.
    """

    def __init__(
        self, hub: Hub, maxPublishSize: int = 64 * 1024, *, namespace: str = "", authorize: Authorize | None = None
    ) -> None:
        """
        @param maxPublishSize: largest publish request accepted, in
            characters of JSON; larger ones get an error reply. (The
            number of topics a connection may publish to is the hub's
            C{maxTopicsPerConnection}: see L{PubSubProtocol}.)
        @param namespace: the hub namespace of this mount's topics (default:
            the root, where server code's C{hub.publish} goes).
        @param authorize: who may subscribe or publish where on this mount
            (default: the hub's C{authorize}).
        """
        self.hub = hub
        self.topics = hub.namespace(namespace, authorize)
        self._maxPublishSize = maxPublishSize

    def buildProtocol(self, request: object) -> PubSubProtocol:
        return PubSubProtocol(self.topics, self._maxPublishSize)
