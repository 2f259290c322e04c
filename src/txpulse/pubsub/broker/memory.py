# -*- test-case-name: tests.pubsub.test_hub -*-
"""
The in-process broker: the default, needs nothing else running.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["MemoryBroker"]


class MemoryBroker:
    """
    Delivers each published message straight back to the local hub,
    synchronously and in order.
    """

    def __init__(self) -> None:
        self._deliver: Callable[[str, str], None] | None = None

    def start(self, deliver: Callable[[str, str], None]) -> None:
        self._deliver = deliver

    def subscribe(self, topic: str) -> None:
        """
        Nothing to do: every topic is local.
        """

    def unsubscribe(self, topic: str) -> None:
        """
        Nothing to do: every topic is local.
        """

    def publish(self, topic: str, payload: str) -> None:
        if self._deliver is not None:
            self._deliver(topic, payload)

    def stop(self) -> None:
        self._deliver = None
