# -*- test-case-name: tests.pubsub.test_hub -*-
"""
A L{Namespace}: the topics of one mount of a L{txpulse.pubsub.hub.Hub}, and
who may use them.

Namespaces: each mount's topics live in a namespace of their own
(L{txpulse.pubsub.hub.Hub.namespace}); the hub's own methods are those of
the root namespace (C{""}), whose broker channel for topic T is T itself
(L{txpulse.pubsub.envelope.channelFor}), so that
C{hub.publish("news", ...)} from server code reaches C{/pubsub}. Topic T of
namespace N travels on channel C{N + "\x1f" + T}; topic and namespace
names may not contain control characters, so no client of one namespace
can name a channel of another. Deliveries carry the topic as the
namespace's clients see it.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from .envelope import _CONTROL, SEPARATOR, channelFor, dumpJSON
from .history import Position
from .interfaces import Authorize, Subscriber

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["Namespace"]


def _askQualified(hook: Authorize, prefix: str, identity: object, action: str, topic: str) -> bool:
    """
    Ask the hub's C{hook} about C{topic} of the namespace whose topics it
    sees behind C{prefix} (see L{Namespace.allowed}).
    """
    return hook(identity, action, prefix + topic)


class Namespace:
    """
    The topics of one namespace of a L{Hub}: what one mount's clients can
    reach. Subscriptions and deliveries live in the hub; a namespace only
    maps its topic names to broker channels, and knows who may use them.

    @ivar hub: the L{Hub}.
    @ivar name: the namespace's name (C{""}: the root).
    """

    def __init__(self, hub: Hub, name: str, authorize: Authorize | None = None) -> None:
        if not isinstance(name, str) or _CONTROL.search(name) is not None:
            raise ValueError(f"a namespace name may not contain control characters: {name!r}")
        self.hub = hub
        self.name = name
        self._authorize = authorize

    @property
    def authorize(self) -> Authorize | None:
        """
        The per-topic authorization hook, called with topics as this
        namespace's clients name them: this namespace's own; else the hub's,
        which (see L{allowed}) sees topic T of namespace N as C{N/T}
        (C{None}: everything is allowed).
        """
        if self._authorize is not None:
            return self._authorize
        hook = self.hub.authorize
        if hook is None or not self.name:
            return hook
        return partial(_askQualified, hook, self.name + "/")

    def allowed(self, identity: object, action: str, topic: str) -> bool:
        """
        Whether C{identity} may C{action} (C{"subscribe"} or C{"publish"})
        on C{topic}.

        A namespace with its own hook asks it with C{topic} as is. Without
        one, the hub's hook decides, and it sees every namespace: the root's
        topics as they are, and topic T of namespace N as C{N/T} (chat room
        C{"staff"} is C{"chat/staff"}, not the C{/pubsub} topic C{"staff"};
        the name rooms had when they were root topics, so hooks written for
        that keep matching). A root topic spelled C{N/T} is seen under the
        same name, so a hook that guards C{N/T} guards both (keep C{"/"} out
        of namespace names, or C{"a/b"}'s topic C{"c"} and C{"a"}'s topic
        C{"b/c"} would share a name too).
        """
        own = self._authorize
        if own is not None:
            return bool(own(identity, action, topic))
        hook = self.hub.authorize
        if hook is None:
            return True
        return bool(hook(identity, action, self.name + "/" + topic if self.name else topic))

    def checkTopic(self, topic: object) -> str:
        """
        Validate a topic name (see L{Hub.checkTopic}).
        """
        return self.hub.checkTopic(topic)

    def channel(self, topic: str) -> str:
        """
        The broker channel of C{topic}.
        """
        return channelFor(self.name, topic)

    def subscribe(
        self, subscriber: Subscriber, topic: str, since: Position | None = None, *, answer: bool = False
    ) -> Deferred[None] | None:
        """
        Add C{subscriber} to C{topic}.

        Without C{answer} (server code, the chat): idempotent, silent, and
        live at once. With C{answer} (the C{/pubsub} protocol), or C{since}:
        the subscription is answered, before any delivery on it, with
        C{{"subscribed": T, "offset": TOP, "epoch": E}}; from C{since}, with
        C{"recovered": true} and the publications after C{since}, or
        C{"recovered": false} (see L{txpulse.pubsub.broker.Broker}, C{history}); then the live
        ones. Asked again for an answer, a subscription starts over (the
        client names the position it has).

        Authorization is the caller's (L{allowed}), for recovery as for
        any subscription.

        @return: C{None} once the subscription is live; else (its history
            is still being read, or its replay written: see
            L{txpulse.pubsub.recovery}) a L{Deferred} that fires when it is, or when it is
            abandoned. A protocol that returns it from
            C{textMessageReceived} is not read meanwhile, which is what
            bounds the work one connection's pipelined requests can queue.
        @raise HubError: for a bad topic name or too many subscriptions.
        """
        topic = self.checkTopic(topic)
        return self.hub._subscribe(subscriber, self.channel(topic), topic, since, answer or since is not None)

    def unsubscribe(self, subscriber: Subscriber, topic: str) -> None:
        """
        Remove C{subscriber} from C{topic} (no error if it was not there).
        """
        if isinstance(topic, str):
            self.hub._unsubscribe(subscriber, self.channel(topic))

    def topicsOf(self, subscriber: Subscriber) -> frozenset[str]:
        """
        The topics of this namespace C{subscriber} is subscribed to.
        """
        prefix = channelFor(self.name, "")
        channels = self.hub._subscriptions.get(subscriber, ())
        if not prefix:
            return frozenset(channel for channel in channels if SEPARATOR not in channel)
        return frozenset(channel[len(prefix) :] for channel in channels if channel.startswith(prefix))

    def subscribers(self, topic: str) -> frozenset[Subscriber]:
        """
        The local subscribers of C{topic}.
        """
        return frozenset(self.hub._topics.get(self.channel(topic), ()))

    def publish(self, topic: str, data: Any) -> Position | Deferred[Position] | None:
        """
        Publish C{data} to C{topic}: see L{Hub.publish}.
        """
        self.checkTopic(topic)
        return self.hub.broker.publish(self.channel(topic), dumpJSON({"topic": topic, "data": data}))
