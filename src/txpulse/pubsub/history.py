# -*- test-case-name: tests.pubsub.test_history -*-
"""
Positions and bounded history of pub/sub topics: what lets a subscriber
that was away resume where it left off.

Every publication on a topic gets a L{Position}: an C{offset} (1 for the
first publication of the topic, +1 for each one after, no gaps) and the
topic's C{epoch}, a string that changes whenever the topic's past was
lost (a new process, a topic forgotten because nothing of it was kept), so
that offsets of an old epoch are never taken for offsets of the new one.

A L{Ring} keeps the last publications of one topic in memory, bounded by
number (C{size}) and age (C{ttl} seconds, on the broker's clock); it is the
in-process broker's history (L{txpulse.pubsub.broker.memory}). Brokers
answer a subscription, and a recovery request, with a L{History}.

Memory: a ring holds each publication's envelope (a C{str}, 49 bytes plus
one per ASCII character) and its time (a C{float}, 24 bytes), plus two
pointers in two C{deque}s; about 230 bytes for a 100-byte message on a
short topic name. The README ("Delivery guarantees") has the measured
figures.
"""

from __future__ import annotations

import re
import sys
from collections import deque
from collections.abc import Sequence
from itertools import islice
from typing import NamedTuple, overload

__all__ = [
    "Position",
    "History",
    "Ring",
    "EPOCH",
    "isEpoch",
    "positioned",
    "keptBytes",
    "Publications",
    "DEFAULT_HISTORY_MAX_BYTES",
    "DEFAULT_HISTORY_MAX_TOPICS",
]

#: Memory all topics' histories of one process may hold by default
#: (C{--history-max-bytes}), counted as L{keptBytes}: past it, the oldest
#: publications (those of the least recently published topics first) are
#: dropped. 64 MiB of it measured about 70 MiB of RSS (README, "Delivery
#: guarantees"); a client resuming from a dropped publication gets
#: C{"recovered": false}.
DEFAULT_HISTORY_MAX_BYTES = 64 << 20

#: Topics whose history one process keeps by default
#: (C{--history-max-topics}): past it, the least recently published
#: topic's history is dropped to make room. Measured: an empty topic's
#: history (its ring) costs about 1.3 KiB, so 10,000 of them 13 MiB on top
#: of what they keep (which L{DEFAULT_HISTORY_MAX_BYTES} bounds).
DEFAULT_HISTORY_MAX_TOPICS = 10_000

#: What keeping one publication costs besides its payload string: its time
#: (a C{float}, 24 bytes) and a slot in each of the ring's two C{deque}s
#: (8 bytes each, plus a share of their 64-slot blocks).
ENTRY_OVERHEAD = 48


_getsizeof = sys.getsizeof
#: What C{sys.getsizeof} of an ASCII string adds to its length (the size
#: of C{""}); an ASCII string is sized from its length, which is 4 times
#: faster than asking C{sys.getsizeof}.
_ASCII_STR = sys.getsizeof("")


def keptBytes(payload: str) -> int:
    """
    The memory keeping C{payload} in a L{Ring} costs: the string object's
    real size (C{sys.getsizeof}: 49 bytes plus one per ASCII character, two
    or four per character of other text) plus L{ENTRY_OVERHEAD}.
    """
    return (len(payload) + _ASCII_STR if payload.isascii() else _getsizeof(payload)) + ENTRY_OVERHEAD


#: What an epoch may look like: brokers make them of these characters only,
#: so that the hub writes them into JSON as they are, without escaping.
EPOCH = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


def isEpoch(value: object) -> bool:
    """
    Whether C{value} can be an epoch (a string matching L{EPOCH}).
    """
    return isinstance(value, str) and EPOCH.fullmatch(value) is not None


class Position(NamedTuple):
    """
    Where a publication sits in its topic: C{offset} within C{epoch}. For a
    topic, the position of its latest publication (offset 0: none yet).
    """

    offset: int
    epoch: str


class History(NamedTuple):
    """
    A broker's answer to C{history(channel, since)}.

    @ivar offset: the topic's latest offset (0: nothing published yet in
        this epoch), as of the moment the answer was made.
    @ivar epoch: the topic's epoch.
    @ivar recovered: with C{since}: whether every publication after it is
        in C{publications} (C{False}: the epoch changed, or some of them
        are no longer kept); without C{since}: C{False}.
    @ivar publications: C{(offset, payload)} of the publications after
        C{since} up to C{offset}, in order, with no gap; empty unless
        C{recovered}.
    """

    offset: int
    epoch: str
    recovered: bool
    publications: Sequence[tuple[int, str]]


class Publications(Sequence[tuple[int, str]]):
    """
    C{(offset, payload)} of consecutive publications, as a L{Ring} answers
    them: a list of the payloads and the first one's offset, not a tuple
    per publication. A replay waits in the hub until it is written, so
    what it holds meanwhile matters: 8 bytes per publication (the list's
    pointer; the payloads are the ring's own strings) rather than about
    100 (a tuple and an C{int} each), which for a thousand clients resuming
    a thousand publications at once is 8 MB rather than 100.
    """

    __slots__ = ("first", "payloads")

    def __init__(self, first: int, payloads: list[str]) -> None:
        self.first = first
        self.payloads = payloads

    def __len__(self) -> int:
        return len(self.payloads)

    @overload
    def __getitem__(self, index: int) -> tuple[int, str]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[int, str]]: ...

    def __getitem__(self, index: int | slice) -> tuple[int, str] | list[tuple[int, str]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.payloads)))]
        payload = self.payloads[index]
        return (self.first + (index if index >= 0 else len(self.payloads) + index), payload)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Publications({self.first}, {self.payloads!r})"


def positioned(payload: str, offset: int, epoch: str) -> str:
    """
    The envelope C{payload} (C{{"topic": T, "data": D}}) with its position
    added: C{{"topic": T, "data": D, "offset": N, "epoch": E}}. C{epoch}
    must match L{EPOCH} (it is not escaped).
    """
    return f'{payload[:-1]},"offset":{offset},"epoch":"{epoch}"}}'


class Ring:
    """
    The position and the kept publications of one topic: at most C{size}
    of them, none older than C{ttl} seconds. Offsets are implicit: the
    last payload kept has offset C{offset}, the one before C{offset - 1}...

    @ivar offset: the offset of the topic's latest publication (0: none).
    @ivar epoch: the topic's epoch.
    @ivar size: the most publications kept (0: none, history is off).
    @ivar ttl: seconds a publication is kept (0: none, history is off).
    @ivar bytes: the memory the kept publications cost (L{keptBytes}).
    """

    __slots__ = ("offset", "epoch", "size", "ttl", "bytes", "_payloads", "_times")

    def __init__(self, epoch: str, size: int, ttl: float) -> None:
        if size <= 0 or ttl <= 0:
            size, ttl = 0, 0.0
        self.offset = 0
        self.epoch = epoch
        self.size = size
        self.ttl = ttl
        self.bytes = 0
        self._payloads: deque[str] = deque(maxlen=size)
        self._times: deque[float] = deque(maxlen=size)

    def __len__(self) -> int:
        """
        How many publications are kept (some may have expired since the
        last L{append} or L{expire}).
        """
        return len(self._payloads)

    def append(self, payload: str, now: float) -> int:
        """
        Record a publication made at C{now}: it gets the next offset, and
        is kept if history is on (dropping the oldest one beyond C{size},
        and the expired ones).

        @return: its offset.
        """
        self.offset = offset = self.offset + 1
        if self.size:
            times, payloads = self._times, self._payloads
            if times and times[0] <= now - self.ttl:
                self.expire(now)
            # keptBytes, inlined (this runs once per publication); when
            # full, appending drops the oldest (the deques' maxlen).
            size = len(payload) + _ASCII_STR if payload.isascii() else _getsizeof(payload)
            if len(payloads) == self.size:
                oldest = payloads[0]
                self.bytes += size - (len(oldest) + _ASCII_STR if oldest.isascii() else _getsizeof(oldest))
            else:
                self.bytes += size + ENTRY_OVERHEAD
            payloads.append(payload)
            times.append(now)
        return offset

    def expire(self, now: float) -> None:
        """
        Drop the publications older than C{ttl} seconds at C{now}.
        """
        times, payloads, oldest = self._times, self._payloads, now - self.ttl
        while times and times[0] <= oldest:
            times.popleft()
            self.bytes -= keptBytes(payloads.popleft())

    def dropOldest(self) -> int:
        """
        Drop the oldest publication kept (there must be one).

        @return: the memory it cost (L{keptBytes}).
        """
        self._times.popleft()
        freed = keptBytes(self._payloads.popleft())
        self.bytes -= freed
        return freed

    def clear(self) -> None:
        """
        Drop every publication kept (the position stays).
        """
        self._times.clear()
        self._payloads.clear()
        self.bytes = 0

    def since(self, since: Position | None, now: float) -> History:
        """
        The answer to a subscription from C{since} (see L{History}): every
        kept publication after it, if it is of this epoch, not ahead of the
        latest offset, and the one right after it is still kept.
        """
        top, epoch = self.offset, self.epoch
        if since is None or since.epoch != epoch or since.offset > top:
            return History(top, epoch, False, ())
        if since.offset == top:
            return History(top, epoch, True, ())
        self.expire(now)
        first = top - len(self._payloads) + 1
        if since.offset + 1 < first:
            return History(top, epoch, False, ())
        skip = since.offset + 1 - first
        kept = list(islice(self._payloads, skip, None))
        return History(top, epoch, True, Publications(since.offset + 1, kept))
