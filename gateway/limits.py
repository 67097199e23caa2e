"""Per-user request rate, per-address handshakes and per-connection duplicate deliveries; sans-I/O
(the caller passes time)."""

from __future__ import annotations

from collections import Counter, OrderedDict, deque

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
    """The last ``size`` delivery ids a connection got, to drop a second copy of one."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, delivery_id: str) -> bool:
        if delivery_id in self._ids:
            return False
        self._ids[delivery_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True
