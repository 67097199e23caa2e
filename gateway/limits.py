"""Per-user request rate, per-address handshakes, per-connection duplicate deliveries and the
bounded outbox of a connection; sans-I/O but for the outbox's wait (the caller passes time)."""

from __future__ import annotations

import asyncio
import math
import random
import weakref
from collections import Counter, deque
from typing import Generic, TypeVar

T = TypeVar("T")

WINDOW_SECONDS = 60.0


class RateLimiter:
    """At most ``limit`` accepted requests per user in any sliding window of 60 seconds, counted
    across every gateway without a round trip per request.

    Each gateway counts what it accepts (``allow``) and, about once a second, hands the counts of
    the users active since its last report to the others (``report``); what the others report is
    added (``merge``) and counts against the same limit until it leaves the window. The overshoot
    is bounded: a gateway does not know yet what the others accepted in the last interval (about a
    second, plus the broker's latency), so a user spreading requests over N gateways gets at most
    (N - 1) x what each of those gateways accepted from them in one interval beyond the limit (and
    never more than N x the limit); on one gateway, or once the counts have arrived, not one request.
    Remote counts are timed by their arrival here, so they expire no earlier than they should.

    Refused requests are not recorded, so they never count against the user.
    """

    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self._window = window
        self._accepted: dict[str, deque[float]] = {}
        self._unreported: Counter[str] = Counter()
        self._remote: dict[str, deque[tuple[float, int]]] = {}  # user -> (arrived at, count)

    def allow(self, user_id: str, now: float) -> bool:
        times = self._accepted.setdefault(user_id, deque())
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) + self._remote_count(user_id, now) >= self.limit:
            return False
        times.append(now)
        self._unreported[user_id] += 1
        return True

    def report(self) -> dict[str, int]:
        """What this gateway accepted per user since the last report, for the other gateways."""
        counts, self._unreported = dict(self._unreported), Counter()
        return counts

    def merge(self, counts: dict[str, int], now: float) -> None:
        """Another gateway's report: it accepted these many requests per user just now."""
        for user_id, count in counts.items():
            self._remote.setdefault(user_id, deque()).append((now, count))

    def forget_idle(self, user_id: str, now: float) -> None:
        """Drop a user's record once nothing in it can matter any more."""
        times = self._accepted.get(user_id)
        if times is not None and (not times or times[-1] <= now - self._window):
            del self._accepted[user_id]

    def prune(self, now: float) -> None:
        """Drop what other gateways reported that has left the window (for users not connected here too)."""
        for user_id in list(self._remote):
            self._remote_count(user_id, now)

    def _remote_count(self, user_id: str, now: float) -> int:
        reported = self._remote.get(user_id)
        if reported is None:
            return 0
        while reported and reported[0][0] <= now - self._window:
            reported.popleft()
        if not reported:
            del self._remote[user_id]
            return 0
        return sum(count for _, count in reported)


class AddressLimiter:
    """At most ``limit`` handshakes per client address in any sliding window of 60 seconds, on this
    gateway process alone (no limit when ``limit`` is 0). Refused handshakes are not recorded.

    Addresses with nothing left in the window are forgotten once a window, so what is kept follows
    the addresses seen lately, not every address ever seen.
    """

    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self._window = window
        self._times: dict[str, deque[float]] = {}
        self._swept = 0.0

    def allow(self, address: str, now: float) -> bool:
        if not self.limit:
            return True
        self._sweep(now)
        times = self._times.setdefault(address, deque())
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    def _sweep(self, now: float) -> None:
        if now - self._swept < self._window:
            return
        self._swept = now
        for address in [a for a, times in self._times.items() if not times or times[-1] <= now - self._window]:
            del self._times[address]


class RecentIds:
    """The last ``size`` delivery ids a connection got, to drop a second copy of one (the copies of
    one delivery, by a room's key and a user's, arrive close together).

    Kept as 8-byte hashes in one ring buffer (1 KiB for 128, made at the first id) rather than as
    strings in a dict (about 90 KiB for 512): every connection has one. ``bytearray.find`` scans it
    in C; a match counts only at a multiple of 8. Unused slots hold -1, which ``hash`` never
    returns; two ids sharing a hash (one in 2**64) would drop the second.
    """

    __slots__ = ("_next", "_ring", "_size")

    def __init__(self, size: int = 128) -> None:
        self._size = size
        self._ring = bytearray()
        self._next = 0

    def first_time(self, delivery_id: str) -> bool:
        if not self._ring:
            self._ring = bytearray(UNUSED * self._size)
        digest = hash(delivery_id).to_bytes(8, "little", signed=True)
        start = 0
        while (at := self._ring.find(digest, start)) >= 0:
            if at % 8 == 0:
                return False
            start = at + 1
        self._ring[self._next : self._next + 8] = digest
        self._next = (self._next + 8) % len(self._ring)
        return True


UNUSED = (-1).to_bytes(8, "little", signed=True)


class OutboxFullError(Exception):
    """An ``Outbox`` already holds as many items as it may."""


class Outbox(Generic[T]):
    """A bounded first-in first-out queue with one reader: what ``asyncio.Queue`` does for a
    connection's frames, in a deque and a future (a Queue keeps three deques and an event, and
    every connection has one)."""

    __slots__ = ("_items", "_limit", "_waiter")

    def __init__(self, limit: int) -> None:
        self._items: deque[T] | None = None  # made when needed, dropped when emptied (760 bytes)
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else 0

    def put(self, item: T) -> None:
        """Add ``item``, or raise ``OutboxFullError``; never waits."""
        if self._items is None:
            self._items = deque()
        elif len(self._items) >= self._limit:
            raise OutboxFullError
        self._items.append(item)
        if self._waiter is not None:
            _wake(self._waiter)

    async def get(self, idle: float) -> T | None:
        """The oldest item, once there is one; None when none came for ``idle`` seconds (one
        reader at a time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + idle
        while self._items is None:
            if loop.time() >= deadline:
                return None
            self._waiter = loop.create_future()
            timer = loop.call_at(deadline, _wake, self._waiter)
            try:
                await self._waiter
            finally:
                timer.cancel()
                self._waiter = None
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


PACE_WINDOW_SECONDS = 10.0
MAX_RETRY_AFTER_SECONDS = 30
ASSUMED_RATE = 50.0  # sign-ins a second a gateway completes, until it has measured its own


class SignIns(Generic[T]):
    """The connections of a gateway past their handshake and not signed in yet, and how fast sign-ins
    complete: what a handshake refused for too many of them is told to wait (``retry_after``), so a
    storm of reconnecting clients comes back spread over the time the gateway needs for them."""

    def __init__(self) -> None:
        self._pending: weakref.WeakSet[T] = weakref.WeakSet()
        self._completed: deque[float] = deque()  # when each sign-in of the last PACE_WINDOW_SECONDS completed

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, connection: T) -> None:
        self._pending.add(connection)

    def discard(self, connection: T, now: float | None = None) -> None:
        """``connection`` is no longer signing in: signed in at ``now``, or (None) given up."""
        if connection in self._pending and now is not None:
            self._completed.append(now)
        self._pending.discard(connection)

    def retry_after(self, now: float) -> int:
        """Seconds a refused client should wait: the time the pending sign-ins take at the rate of
        the last few seconds (at least ``ASSUMED_RATE`` a second: before any completes, the rate is
        not known yet), spread at random from half to one and a half times that, so that refused
        clients come back over the time the gateway needs rather than at once; 1 to 30 seconds."""
        while self._completed and self._completed[0] <= now - PACE_WINDOW_SECONDS:
            self._completed.popleft()
        rate = max(len(self._completed) / PACE_WINDOW_SECONDS, ASSUMED_RATE)
        wait = len(self._pending) / rate
        return min(max(math.ceil(wait * random.uniform(0.5, 1.5)), 1), MAX_RETRY_AFTER_SECONDS)
