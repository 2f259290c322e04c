# -*- test-case-name: tests.pubsub.test_hub -*-
"""
What travels through the brokers: the envelope C{{"topic": T, "data": D}}
as strict JSON text (L{loadJSON}, L{dumpJSON}, L{checkEnvelope}), and the
broker channel a topic of a namespace travels on (L{channelFor},
L{topicOfChannel}; namespaces are described in L{txpulse.pubsub.namespace}).

Strict JSON: requests are parsed without C{NaN}/C{Infinity} and with a
bound on nesting (both are an C{{"error"}} reply), and data is encoded with
C{allow_nan=False} (server code publishing C{NaN} gets a L{ValueError}).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["SEPARATOR", "channelFor", "topicOfChannel", "loadJSON", "dumpJSON", "checkEnvelope"]

#: Between a namespace and a topic in a broker channel name: a control
#: character, which topic and namespace names may not contain.
SEPARATOR = "\x1f"

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def channelFor(namespace: str, topic: str) -> str:
    """
    The broker channel of C{topic} in C{namespace}: the topic itself in the
    root namespace (C{""}), else C{namespace + SEPARATOR + topic}.
    """
    return namespace + SEPARATOR + topic if namespace else topic


def topicOfChannel(channel: str) -> str:
    """
    The topic, as its namespace's clients see it, of a broker channel.
    """
    _namespace, separator, topic = channel.partition(SEPARATOR)
    return topic if separator else channel


def _qualified(channel: str) -> str:
    """
    How hooks see the topic of C{channel}: C{N/T} for topic T of namespace N.
    """
    namespace, separator, topic = channel.partition(SEPARATOR)
    return f"{namespace}/{topic}" if separator else channel


def _refuseConstant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: Built once: C{json.loads} with any keyword argument builds a new decoder
#: per call, which doubled the cost of parsing a small request.
_decodeStrict = json.JSONDecoder(parse_constant=_refuseConstant).decode


def loadJSON(text: str) -> Any:
    """
    Parse JSON strictly: C{NaN}, C{Infinity} and C{-Infinity} are refused,
    and so is nesting too deep for the parser.

    @raise ValueError: for anything but valid JSON.
    """
    try:
        return _decodeStrict(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumpJSON(value: Any) -> str:
    """
    Encode C{value} as compact JSON text that every JSON parser accepts.

    @raise ValueError: for C{NaN} or infinite floats, nesting too deep, or
        strings with lone surrogates (not encodable as UTF-8).
    @raise TypeError: for values JSON cannot encode.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except RecursionError:
        raise ValueError("data nested too deeply to encode as JSON") from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("data holds a lone surrogate, which UTF-8 cannot encode") from None
    return text


def checkEnvelope(channel: str, payload: str) -> str | None:
    """
    Check a payload that arrived from outside this process (e.g. from
    Redis) before it is relayed: it must be a strict JSON envelope
    C{{"topic": T, "data": D}} whose T is the topic of C{channel}.

    @return: why it is refused, or C{None} if it is good.
    """
    try:
        envelope = loadJSON(payload)
    except ValueError as error:
        return f"not valid JSON ({error})"
    if not isinstance(envelope, dict) or set(envelope) != {"topic", "data"}:
        return 'not a {"topic", "data"} envelope'
    if envelope["topic"] != topicOfChannel(channel):
        return f"topic {envelope['topic']!r} does not match the channel"
    return None
