"""Per-user request rate and per-connection duplicate deliveries; sans-I/O (the caller passes time)."""

from __future__ import annotations

from collections import OrderedDict, deque

WINDOW_SECONDS = 60.0


class RateLimiter:
    """At most ``limit`` accepted requests per user in any sliding window of 60 seconds.

    Refused requests are not recorded, so they never count against the user.
    """

    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self._window = window
        self._accepted: dict[str, deque[float]] = {}

    def allow(self, user_id: str, now: float) -> bool:
        times = self._accepted.setdefault(user_id, deque())
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    def forget_idle(self, user_id: str, now: float) -> None:
        """Drop a user's record once nothing in it can matter any more."""
        times = self._accepted.get(user_id)
        if times is not None and (not times or times[-1] <= now - self._window):
            del self._accepted[user_id]


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
