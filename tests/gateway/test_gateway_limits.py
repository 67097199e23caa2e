"""gateway.limits: the sliding-window rate limit and the duplicate filter."""

from __future__ import annotations

from gateway.limits import RateLimiter, RecentIds


def test_sliding_window() -> None:
    """At most ``limit`` requests in any 60 seconds; refused ones do not count."""
    limiter = RateLimiter(2)
    assert limiter.allow("u", 0.0) and limiter.allow("u", 30.0)
    assert not limiter.allow("u", 59.0)
    assert not limiter.allow("u", 59.9)
    assert limiter.allow("u", 60.0)  # the request at 0 left the window
    assert not limiter.allow("u", 61.0)
    assert limiter.allow("u", 90.0)
    assert limiter.allow("v", 61.0)  # per user


def test_idle_users_are_forgotten() -> None:
    limiter = RateLimiter(1)
    limiter.allow("u", 0.0)
    limiter.forget_idle("u", 10.0)
    assert not limiter.allow("u", 10.0)
    limiter.forget_idle("u", 61.0)
    assert limiter.allow("u", 61.0)


def test_recent_ids_drop_second_copies_within_their_size() -> None:
    recent = RecentIds(size=2)
    assert recent.first_time("a") and not recent.first_time("a")
    assert recent.first_time("b") and recent.first_time("c")
    assert recent.first_time("a")  # forgotten: only the last two are kept
