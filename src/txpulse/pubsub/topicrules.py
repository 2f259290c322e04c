# -*- test-case-name: tests.pubsub.test_topicrules -*-
"""
Per-topic authorization rules for the hub mounts of C{twistd txpulse}
(C{--topic-rules FILE}): who may subscribe and publish to which topics, per
mount. The rules become the L{txpulse.pubsub.hub.Authorize} hook of that mount's
hub namespace.

The file is a JSON object keyed by mount (C{"/pubsub"}, C{"/chat"}); each
value is a list of rules::

    {
      "/pubsub": [
        {"topic": "public/#",           "subscribe": ["*", "anonymous"], "publish": ["*"]},
        {"topic": "user/{identity}/#",  "subscribe": ["*"], "publish": ["*"]},
        {"topic": "alerts",             "subscribe": ["*"], "publish": ["ops"]}
      ],
      "/chat": [
        {"topic": "lobby", "subscribe": ["*"], "publish": ["*"]},
        {"topic": "staff", "subscribe": ["alice", "bob"], "publish": ["alice"]}
      ]
    }

  - C{topic} is a pattern of C{/}-separated levels: C{+} matches exactly one
    level, C{#} (last) matches any number of levels, including none, and
    C{{identity}} (a whole level) matches the connection's own identity
    only. On C{/chat} the topic is the room name.
  - C{subscribe} and C{publish} list who may do that (a missing list:
    nobody): an identity (as the accept hook gives it, e.g. the API key's
    name), C{"*"} (any authenticated connection) or C{"anonymous"} (a
    connection without an identity, i.e. on a mount that is not protected;
    it never matches an identity, even one spelled C{"anonymous"}). On
    C{/chat}, C{subscribe} is joining a room and C{publish} is saying
    something in it.
  - An action is allowed when any rule whose C{topic} matches lists the
    connection; a mount with rules allows nothing else. A mount without
    rules allows everything to everyone it lets in (so a protected mount
    allows any authenticated identity, on its own topics only).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .hub import Authorize

__all__ = ["TopicRule", "TopicRules", "ANY_AUTHENTICATED", "ANONYMOUS", "IDENTITY"]

#: Who may: any connection with an identity.
ANY_AUTHENTICATED = "*"
#: Who may: a connection without an identity.
ANONYMOUS = "anonymous"
#: A topic level matching the connection's own identity.
IDENTITY = "{identity}"

_ACTIONS = ("subscribe", "publish")
#: Characters an identity may not have to stand for a C{{identity}} level:
#: one that did could reach another identity's topics.
_NOT_IN_IDENTITY = frozenset("/+#") | frozenset(chr(code) for code in range(0x20))


@dataclass(frozen=True)
class TopicRule:
    """
    One rule: the topic pattern, and who may subscribe and publish.
    """

    pattern: tuple[str, ...]
    subscribe: frozenset[str]
    publish: frozenset[str]

    @classmethod
    def parse(cls, rule: object, where: str) -> TopicRule:
        """
        A rule from its JSON form.

        @raise ValueError: naming C{where}, for a malformed rule.
        """
        if not isinstance(rule, dict):
            raise ValueError(f'{where}: a rule is an object {{"topic": ..., "subscribe": [...], "publish": [...]}}')
        unknown = set(rule) - {"topic", *_ACTIONS}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
        topic = rule.get("topic")
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"{where}: 'topic' must be a non-empty string")
        levels = tuple(topic.split("/"))
        for i, level in enumerate(levels):
            if "#" in level and (level != "#" or i != len(levels) - 1):
                raise ValueError(f"{where}: '#' must be a whole level, the last one: {topic!r}")
            if "+" in level and level != "+":
                raise ValueError(f"{where}: '+' must be a whole level: {topic!r}")
            if "{" in level and level != IDENTITY:
                raise ValueError(f"{where}: {IDENTITY} must be a whole level: {topic!r}")
        who: dict[str, frozenset[str]] = {}
        for action in _ACTIONS:
            names = rule.get(action, [])
            if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
                raise ValueError(f"{where}: {action!r} must be a list of identities, '*' or 'anonymous'")
            who[action] = frozenset(names)
        return cls(levels, who["subscribe"], who["publish"])

    def matches(self, identity: str | None, topic: Sequence[str]) -> bool:
        """
        Whether this rule's pattern matches C{topic} (its levels) for a
        connection with C{identity}.
        """
        pattern = self.pattern
        for i, level in enumerate(pattern):
            if level == "#":
                return True
            if i >= len(topic):
                return False
            if level == "+":
                continue
            if level == IDENTITY:
                if identity is None or topic[i] != identity:
                    return False
                continue
            if topic[i] != level:
                return False
        return len(topic) == len(pattern)

    def admits(self, identity: str | None, action: str) -> bool:
        """
        Whether this rule lets C{identity} do C{action}: C{"anonymous"}
        admits only a connection without an identity, never an identity
        spelled C{"anonymous"}.
        """
        who = self.subscribe if action == "subscribe" else self.publish if action == "publish" else frozenset()
        if identity is None:
            return ANONYMOUS in who
        return ANY_AUTHENTICATED in who or (identity != ANONYMOUS and identity in who)


class TopicRules:
    """
    The rules of every mount (see the module docstring).

    @ivar mounts: the rules per mount path.
    """

    def __init__(self, mounts: dict[str, list[TopicRule]]) -> None:
        self.mounts = mounts

    @classmethod
    def fromJSON(cls, text: str, where: str = "topic rules") -> TopicRules:
        """
        Parse rules from JSON text.

        @raise ValueError: for malformed rules (naming C{where}).
        """
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ValueError(f"{where}: not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ValueError(f'{where}: expected a JSON object {{"/mount": [rule, ...], ...}}')
        mounts: dict[str, list[TopicRule]] = {}
        for mount, rules in data.items():
            path = "/" + mount.strip("/")
            if not isinstance(rules, list):
                raise ValueError(f"{where}: the rules of {mount!r} must be a list")
            mounts[path] = [TopicRule.parse(rule, f"{where}, {path} rule {n + 1}") for n, rule in enumerate(rules)]
        return cls(mounts)

    @classmethod
    def fromFile(cls, path: str) -> TopicRules:
        """
        Load rules from a JSON file.

        @raise ValueError: for a file that cannot be read or malformed rules.
        """
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"cannot read {path}: {error}") from None
        return cls.fromJSON(text, path)

    def check(self, mounts: Iterable[str]) -> None:
        """
        Make sure every mount with rules is one of C{mounts}.

        @raise ValueError: naming a mount the rules cannot apply to.
        """
        known = set(mounts)
        for mount in self.mounts:
            if mount not in known:
                raise ValueError(f"rules for {mount}, which is not one of {', '.join(sorted(known))}")

    def authorizerFor(self, mount: str) -> Authorize | None:
        """
        The authorization hook of C{mount}: C{None} (everything allowed)
        for a mount without rules.
        """
        rules = self.mounts.get(mount)
        if rules is None:
            return None
        return _Authorizer(tuple(rules))


class _Authorizer:
    """
    An L{Authorize} hook built from a mount's rules.
    """

    def __init__(self, rules: tuple[TopicRule, ...]) -> None:
        self._rules = rules

    def __call__(self, identity: object, action: str, topic: str) -> bool:
        name = None if identity is None else str(identity)
        # An identity with "/", "+", "#" or control characters never stands
        # for an {identity} level: it could pose as several levels, or as
        # part of another identity's topics.
        own = name if name and _NOT_IN_IDENTITY.isdisjoint(name) else None
        levels = topic.split("/")
        return any(rule.admits(name, action) and rule.matches(own, levels) for rule in self._rules)
