"""
Tests for L{txpulse.pubsub.topicrules}: the C{--topic-rules} file, its patterns
(C{+}, C{#}, C{{identity}}), who they name, and the plugin option.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from twisted.python import usage

from txpulse.plugin.tap import Options
from txpulse.pubsub.topicrules import TopicRules

RULES = {
    "/pubsub": [
        {"topic": "public/#", "subscribe": ["*", "anonymous"], "publish": ["*"]},
        {"topic": "user/{identity}/#", "subscribe": ["*"], "publish": ["*"]},
        {"topic": "alerts/+", "subscribe": ["*"], "publish": ["ops"]},
        {"topic": "guests/#", "subscribe": ["anonymous"], "publish": ["anonymous"]},
    ],
    "chat": [{"topic": "staff", "subscribe": ["alice", "bob"], "publish": ["alice"]}],
}


@pytest.mark.parametrize(
    ("identity", "action", "topic", "allowed"),
    [
        (None, "subscribe", "public/news", True),
        (None, "subscribe", "public", True),
        (None, "publish", "public/news", False),
        ("bob", "publish", "public/a/b/c", True),
        ("bob", "subscribe", "user/bob/inbox", True),
        ("bob", "publish", "user/bob", True),
        ("bob", "subscribe", "user/alice/inbox", False),
        (None, "subscribe", "user/None/inbox", False),
        ("a/b", "subscribe", "user/a/b/inbox", False),
        ("+", "subscribe", "user/+/x", False),
        ("bob", "subscribe", "alerts/disk", True),
        ("bob", "subscribe", "alerts/disk/full", False),
        ("bob", "publish", "alerts/disk", False),
        ("ops", "publish", "alerts/disk", True),
        ("bob", "subscribe", "elsewhere", False),
        ("anonymous", "subscribe", "public/news", True),
        ("anonymous", "publish", "public/news", True),
        (None, "subscribe", "guests/lobby", True),
        (None, "publish", "guests/lobby", True),
        ("anonymous", "subscribe", "guests/lobby", False),
        ("anonymous", "publish", "guests/lobby", False),
        ("bob", "subscribe", "guests/lobby", False),
    ],
)
def test_rules_decide_per_identity_action_and_topic(
    identity: str | None, action: str, topic: str, allowed: bool
) -> None:
    """
    A mount with rules allows what some matching rule lists the connection
    for, and nothing else; C{{identity}} matches only the connection's own
    identity, and an identity that could pose as several levels matches
    no C{{identity}} level; C{"anonymous"} means no identity, and never
    admits a connection whose identity is spelled C{"anonymous"} (the
    C{guests/#} rows: the C{public/#} ones pass through C{"*"}).
    """
    authorize = TopicRules.fromJSON(json.dumps(RULES)).authorizerFor("/pubsub")
    assert authorize is not None
    assert authorize(identity, action, topic) is allowed


def test_a_mount_without_rules_allows_everything() -> None:
    """
    Mounts the file does not name keep the default: no hook.
    """
    rules = TopicRules.fromJSON(json.dumps({"/chat": RULES["chat"]}))
    assert rules.authorizerFor("/pubsub") is None
    chat = rules.authorizerFor("/chat")
    assert chat is not None and chat("bob", "subscribe", "staff") and not chat("bob", "publish", "staff")


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        ("[]", "expected a JSON object"),
        ('{"/pubsub": {}}', "must be a list"),
        ('{"/pubsub": [{"topic": "a/#/b"}]}', "'#' must be"),
        ('{"/pubsub": [{"topic": "a+"}]}', "'+' must be"),
        ('{"/pubsub": [{"topic": "u/{identity}x"}]}', "{identity} must be"),
        ('{"/pubsub": [{"topic": "t", "subscribe": "*"}]}', "list of identities"),
        ('{"/pubsub": [{"topic": "t", "read": ["*"]}]}', "unknown key"),
        ('{"/pubsub": [{"topic": ""}]}', "non-empty"),
        ('{"/echo": []}', "not one of"),
        ("{", "not valid JSON"),
    ],
)
def test_bad_rule_files_are_usage_errors(tmp_path: Path, rules: str, error: str) -> None:
    """
    C{--topic-rules} refuses a malformed file, or rules for a mount that is
    not a hub mount, naming the problem.
    """
    path = tmp_path / "rules.json"
    path.write_text(rules)
    with pytest.raises(usage.UsageError, match="--topic-rules") as raised:
        Options().parseOptions(["--topic-rules", str(path)])
    assert error in str(raised.value)
