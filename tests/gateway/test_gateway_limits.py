"""gateway.limits: the sliding-window rate limit, handshakes per address and the duplicate filter."""

from __future__ import annotations

from gateway.limits import AddressLimiter, RateLimiter, RecentIds


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


def test_handshakes_per_address() -> None:
    """At most ``limit`` per address in any 60 seconds; refused ones do not count; 0 is no limit."""
    limiter = AddressLimiter(2)
    assert limiter.allow("10.0.0.1", 0.0) and limiter.allow("10.0.0.1", 30.0)
    assert not limiter.allow("10.0.0.1", 59.0)
    assert limiter.allow("10.0.0.2", 59.0)  # per address
    assert limiter.allow("10.0.0.1", 60.0)
    assert all(AddressLimiter(0).allow("10.0.0.1", 0.0) for _ in range(1000))


def test_addresses_gone_quiet_are_forgotten() -> None:
    limiter = AddressLimiter(1)
    for n in range(100):
        limiter.allow(f"10.0.0.{n}", 1.0)
    limiter.allow("10.0.1.1", 120.0)
    assert list(limiter._times) == ["10.0.1.1"]


def test_recent_ids_drop_second_copies_within_their_size() -> None:
    recent = RecentIds(size=2)
    assert recent.first_time("a") and not recent.first_time("a")
    assert recent.first_time("b") and recent.first_time("c")
    assert recent.first_time("a")  # forgotten: only the last two are kept


def test_other_gateways_counts_count_against_the_limit() -> None:
    """What other gateways report is added to what this one accepted, until it leaves the window."""
    limiter = RateLimiter(3)
    limiter.merge({"u": 2, "v": 5}, 0.0)
    assert limiter.allow("u", 1.0)
    assert not limiter.allow("u", 2.0)
    assert not limiter.allow("v", 2.0)
    assert limiter.allow("w", 2.0)
    assert limiter.allow("u", 60.0) and limiter.allow("u", 60.0)  # the report of time 0 left the window


def test_reports_carry_what_was_accepted_since_the_last_one() -> None:
    """Each accepted request is reported once; refused ones never."""
    limiter = RateLimiter(2)
    assert limiter.report() == {}
    limiter.allow("u", 0.0)
    limiter.allow("u", 0.5)
    limiter.allow("u", 0.6)  # refused
    limiter.allow("v", 0.7)
    assert limiter.report() == {"u": 2, "v": 1}
    assert limiter.report() == {}


def test_old_reports_are_pruned() -> None:
    limiter = RateLimiter(1)
    limiter.merge({"u": 1}, 0.0)
    limiter.prune(30.0)
    assert not limiter.allow("u", 30.0)
    limiter.prune(60.0)
    assert limiter._remote == {}
    assert limiter.allow("u", 60.0)
