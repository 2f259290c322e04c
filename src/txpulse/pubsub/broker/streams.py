# -*- test-case-name: tests.redis.test_redis_positions -*-
"""
What the Redis broker keeps in Redis for positions and history, the two
Lua scripts that read and write it, and L{Track}, the per-channel
sequencer that turns Redis pub/sub (which may lose messages) into
deliveries in offset order with gaps healed from the stream.

Data layout (C{P} is the broker's prefix, C{"txpulse:"} by default, and
C{C} a hub channel):

  - C{P position:C}, a hash: C{epoch} (12 random hex digits, made by the
    first script that finds the hash absent: first use, or Redis lost its
    data) and C{offset} (the latest offset, C{HINCRBY}). Expires
    C{max(positionTtl, ttl)} after the last publication: the history's
    ttl, with C{positionTtl} (60 s by default) as a floor, so a burst of
    one-message topics costs Redis keys for about as long as their
    history does, not a day.
  - C{P history:C}, a stream: one entry per kept publication, with the
    explicit id C{<offset>-0} (so the offset I{is} the id, and
    C{XRANGE N N} reads offset N) and the fields C{p} (the JSON envelope)
    and C{t} (Redis' clock at publication, in ms, for the ttl). Trimmed
    with C{MAXLEN ~ size} (at least C{size} kept), expires C{ttl} after
    the last publication; absent when the channel's history is off.
  - C{P C}, the pub/sub channel: C{"<offset> <epoch> <envelope>"}.
  - C{P origin:O}: the number of the last publication Redis ran for the
    process whose origin is C{O} (see L{PUBLISH}); one key per process,
    kept a day after its last publication (at least as long as positions),
    so that a process cut off for long can still settle the publications
    it lost in flight.

L{PUBLISH} assigns the offset, keeps the entry and publishes it in one
script, which Redis runs atomically: offsets have no gap and no
duplicate across processes, and every subscriber of the pub/sub channel
receives the publications in offset order. L{READ} answers a
subscription (the position, and the publications after a given one) and
heals a node's gap, also atomically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from ..history import History, isEpoch

__all__ = ["PUBLISH", "READ", "Script", "Track", "parseMessage", "parseRead", "positionKey", "historyKey"]

#: Publish a payload: KEYS = position hash, history stream, the
#: publishing process's origin key; ARGV = pub/sub channel, payload, and
#: C{"<size> <ttl> <keep> <fresh> <seq>"} (one argument: each one costs
#: the client's encoder): the history's size (0: no stream) and ttl (ms),
#: how long (ms) to keep the position, a fresh epoch (used if the channel
#: has none), and the publication's number in its process (kept in the
#: origin key: after a lost connection, the process learns which of the
#: publications it sent Redis ran). Returns
#: C{"<epoch> <offset>"} as a status reply (a single line: cheaper for the
#: client to parse than an array).
#:
#: Other programs may run it to publish with positions (a supported
#: interface): KEYS = C{<prefix>position:<C>}, C{<prefix>history:<C>},
#: C{<prefix>origin:<any name of their own>}; ARGV = C{<prefix><C>}, the
#: envelope C{{"topic": T, "data": D}} (T the topic of C, as the broker
#: checks), and C{"<size> <ttl> <keep> <fresh> <seq>"} with the servers'
#: C{--history-size} and C{--history-ttl} (ms), C{keep} at least the ttl,
#: twelve random hex digits, and any increasing number, e.g.::
#:
#:   python -c 'from txpulse.pubsub.broker.streams import PUBLISH; print(PUBLISH)' > publish.lua
#:   redis-cli --eval publish.lua txpulse:position:news txpulse:history:news txpulse:origin:cron , \
#:       txpulse:news '{"topic":"news","data":"hi"}' "1000 120000 120000 $(openssl rand -hex 6) 1"

PUBLISH = """
local size, ttl, keep, fresh, seq = string.match(ARGV[3], '^(%d+) (%d+) (%d+) (%S+) (%d+)$')
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = fresh
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('PEXPIRE', KEYS[1], keep)
if tonumber(size) > 0 then
  local now = redis.call('TIME')
  local ms = now[1] * 1000 + math.floor(now[2] / 1000)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', size, offset .. '-0', 'p', ARGV[2], 't', ms)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', ARGV[1], offset .. ' ' .. epoch .. ' ' .. ARGV[2])
redis.call('SET', KEYS[3], seq, 'PX', math.max(tonumber(keep), 86400000))
return {ok = epoch .. ' ' .. offset}
"""

#: Read a channel's position and kept publications: KEYS = position
#: hash, history stream; ARGV = epoch asked about (C{""}: none), offset
#: after which to read, ttl (ms; 0: no age check), a fresh epoch, how long
#: (ms) to keep a position created here, mode (C{"history"}: nothing
#: unless all of them are there, of that epoch; C{"heal"}: whatever is kept
#: after it, or from the start of a new epoch). Returns C{{epoch, top,
#: complete (0/1), id1, payload1, id2, payload2, ...}}.
READ = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local top = 0
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  top = tonumber(redis.call('HGET', KEYS[1], 'offset'))
end
local after = tonumber(ARGV[2])
if ARGV[1] ~= epoch then
  if ARGV[6] == 'history' then
    return {epoch, top, 0}
  end
  after = 0
end
if after > top then
  return {epoch, top, 0}
end
if after == top then
  return {epoch, top, 1}
end
local entries = redis.call('XRANGE', KEYS[2], (after + 1) .. '-0', top .. '-0')
local complete = 0
if #entries > 0 and entries[1][1] == (after + 1) .. '-0' then
  complete = 1
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then
    local now = redis.call('TIME')
    local ms = now[1] * 1000 + math.floor(now[2] / 1000)
    local fields = entries[1][2]
    for i = 1, #fields, 2 do
      if fields[i] == 't' and tonumber(fields[i + 1]) <= ms - ttl then
        complete = 0
      end
    end
  end
end
if complete == 0 and ARGV[6] == 'history' then
  return {epoch, top, 0}
end
local reply = {epoch, top, complete}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'p' then
      reply[#reply + 1] = entry[1]
      reply[#reply + 1] = fields[i + 1]
    end
  end
end
return reply
"""


class Script:
    """
    A Lua script run with C{EVALSHA} (its SHA1 computed here; the broker
    loads both scripts on every new connection), or C{EVAL}.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()
        self.shaBytes = self.sha.encode("ascii")
        self.sourceBytes = source.encode("utf-8")


def positionKey(prefix: str, channel: str) -> str:
    """
    The key of C{channel}'s position hash.
    """
    return f"{prefix}position:{channel}"


def historyKey(prefix: str, channel: str) -> str:
    """
    The key of C{channel}'s history stream.
    """
    return f"{prefix}history:{channel}"


def parseMessage(message: str) -> tuple[int, str, str] | None:
    """
    C{(offset, epoch, payload)} of a pub/sub message of the L{PUBLISH}
    script, or C{None} if it is not one.
    """
    offset, _, rest = message.partition(" ")
    epoch, _, payload = rest.partition(" ")
    if not offset.isdigit() or not offset.isascii() or not isEpoch(epoch) or not payload.startswith("{"):
        return None
    return int(offset), epoch, payload


def parseRead(reply: Any) -> tuple[History, bool]:
    """
    The reply of L{READ}: a L{History} (its C{recovered} is the script's
    C{complete}) and whether it is complete.

    @raise ValueError: for a reply that is not one of L{READ}'s.
    """
    if not isinstance(reply, list) or len(reply) < 3 or len(reply) % 2 == 0:
        raise ValueError(f"unexpected reply from the read script: {reply!r:.200}")
    epoch, top, complete = reply[0], int(reply[1]), bool(int(reply[2]))
    if not isEpoch(epoch):
        raise ValueError(f"not an epoch: {epoch!r:.80}")
    publications = [(int(str(reply[i]).partition("-")[0]), str(reply[i + 1])) for i in range(3, len(reply), 2)]
    return History(top, epoch, complete, publications), complete


class Track:
    """
    The deliveries of one subscribed channel in this process: what was
    delivered last (C{epoch}, C{offset}), and what waits.

    Publications reach a track from pub/sub (in offset order, unless some
    were lost: the subscribed connection dropped, or was not subscribed
    yet), from this process's own publications made while the channel's
    subscription was not confirmed, and from reads of the stream. The
    track delivers each offset once, in order: the next offset at once, an
    older one never; one further on (a gap) waits, with everything after
    it, while the missing ones are read from the stream (C{heal}); what the
    stream no longer has is skipped (the client sees the gap by offset). A
    new epoch (Redis lost the channel's data) starts over from whatever
    comes.

    While C{holds} is positive (a read whose answer may move the track is
    in flight) or a heal is in progress, publications wait in C{buffer}.

    @ivar confirmed: whether Redis confirmed the channel's C{SUBSCRIBE}
        on the current connection: every publication after that reaches
        this process through pub/sub.
    @ivar needsHeal: whether the stream must be read after C{offset}
        before delivering what waits (the subscription was (re)confirmed,
        or a read failed for want of a connection).
    """

    __slots__ = (
        "channel",
        "history",
        "epoch",
        "offset",
        "confirmed",
        "needsHeal",
        "holds",
        "reading",
        "buffer",
        "waiters",
    )

    def __init__(self, channel: str, history: bool = True) -> None:
        """
        @param history: whether the channel has a stream to heal from
            (without one, gaps are delivered as they are).
        """
        self.channel = channel
        self.history = history
        self.epoch: str | None = None
        self.offset = 0
        self.confirmed = False
        self.needsHeal = False
        self.holds = 0
        self.reading = False
        self.buffer: list[tuple[int, str, str]] = []
        self.waiters: list[tuple[str, int, Callable[[], None]]] = []

    def waitFor(self, epoch: str, offset: int, ready: Callable[[], None]) -> None:
        """
        Call C{ready()} once this track has delivered C{offset} of C{epoch}
        (at once if it has), or moved to another epoch, or L{wake} is told
        to give up.
        """
        self.waiters.append((epoch, offset, ready))
        self.wake()

    def wake(self, everyone: bool = False) -> None:
        """
        Call the waiters whose position was reached (C{everyone}: all of
        them).
        """
        due: list[tuple[str, int, Callable[[], None]]] = []
        waiting: list[tuple[str, int, Callable[[], None]]] = []
        for waiter in self.waiters:
            epoch, offset, _ = waiter
            (due if everyone or epoch != self.epoch or offset <= self.offset else waiting).append(waiter)
        # Taken off before they are called: a waiter's answer may come back
        # here (the hub drops a slow subscriber, and the channel with it).
        self.waiters = waiting
        for _epoch, _offset, ready in due:
            ready()

    def seed(self, history: History) -> None:
        """
        Start from C{history}'s position, if nothing was delivered yet.
        """
        if self.epoch is None:
            self.epoch, self.offset = history.epoch, history.offset

    def pump(
        self,
        deliver: Callable[[str, str, int, str], None],
        heal: Callable[[Track], bool],
        afterRead: bool = False,
    ) -> None:
        """
        Deliver what can be delivered in order; start a heal (C{heal(self)},
        which returns whether a read started) for a gap or when
        C{needsHeal}. C{afterRead}: a read just answered, so a gap left
        now cannot be healed (its publications are gone): skip it.
        """
        if self.holds or self.reading:
            return
        if not self.history:
            self.needsHeal = False
            afterRead = True
        if self.needsHeal and self.epoch is not None:
            if heal(self):
                self.needsHeal = False
                return
            if len(self.buffer) < MAX_WAITING:
                return  # waits for a connection to read on
        self.needsHeal = False
        buffer, self.buffer = self.buffer, []
        if len(buffer) > 1 and all(item[1] == buffer[0][1] for item in buffer):
            buffer.sort()
        for index, (offset, epoch, payload) in enumerate(buffer):
            if epoch != self.epoch and self.epoch is not None and offset > 1 and not afterRead:
                # A new epoch (Redis lost the channel's data), seen from
                # further on than its start: what came before in it is read
                # first, as for any gap.
                self.epoch, self.offset = epoch, 0
            if epoch == self.epoch:
                if offset <= self.offset:
                    continue
                if offset > self.offset + 1 and not afterRead:
                    # A gap: heal it before going on; wait for a
                    # connection to read on, up to a point.
                    self.buffer = buffer[index:]
                    if heal(self):
                        return
                    if len(self.buffer) < MAX_WAITING:
                        self.needsHeal = True
                        return
                    self.buffer = []
            afterRead = not self.history
            self.epoch, self.offset = epoch, offset
            deliver(self.channel, payload, offset, epoch)
        if self.waiters:
            self.wake()

    def answered(self, history: History, deliver: Callable[[str, str, int, str], None]) -> None:
        """
        A heal read answered: deliver what it has after C{offset} (or, in a
        new epoch, all of it). What it lacks is gone: the next L{pump}
        (C{afterRead}) skips it.
        """
        self.reading = False
        if history.epoch != self.epoch:
            self.epoch, self.offset = history.epoch, 0
        for offset, payload in history.publications:
            if offset > self.offset:
                self.offset = offset
                deliver(self.channel, payload, offset, history.epoch)


#: Publications a track keeps waiting for a connection to heal on before
#: it gives up healing and delivers them, gaps and all.
MAX_WAITING = 10_000
