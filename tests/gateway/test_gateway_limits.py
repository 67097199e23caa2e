"""gateway.limits: the sliding-window rate limit, handshakes per address and the duplicate filter."""

from __future__ import annotations

import asyncio

import pytest

from gateway.limits import AddressLimiter, Outbox, OutboxFullError, RateLimiter, RecentIds, SignIns


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


class Hashed(str):
    """A delivery id with a chosen hash."""

    def __new__(cls, value: str, digest: int) -> Hashed:
        made = super().__new__(cls, value)
        made.digest = digest
        return made

    def __hash__(self) -> int:
        return self.digest


def test_recent_ids_match_whole_hashes_only() -> None:
    """Bytes of two neighbouring hashes that happen to spell a third one are no match."""
    recent = RecentIds(size=4)
    first, second = 0x0807060504030201, 0x1817161514131211
    spanning = int.from_bytes(bytes([5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14]), "little", signed=True)
    assert recent.first_time(Hashed("a", first)) and recent.first_time(Hashed("b", second))
    assert recent.first_time(Hashed("c", spanning))
    assert not recent.first_time(Hashed("c", spanning)) and not recent.first_time(Hashed("b", second))


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


async def test_an_outbox_is_bounded_first_in_first_out_and_wakes_its_reader() -> None:
    outbox: Outbox[int] = Outbox(2)
    reader = asyncio.create_task(outbox.get(idle=60))
    await asyncio.sleep(0)  # the reader waits on an empty outbox
    assert not reader.done()
    outbox.put(1)
    assert await reader == 1
    outbox.put(2)
    outbox.put(3)
    with pytest.raises(OutboxFullError):
        outbox.put(4)
    assert len(outbox) == 2 and [await outbox.get(60), await outbox.get(60)] == [2, 3]
    assert await outbox.get(idle=0.01) is None  # nothing came: the reader may go


class Conn:
    """A connection, as far as ``SignIns`` cares: weakly referable."""


def test_refused_handshakes_are_told_to_wait_for_the_pending_sign_ins_to_clear() -> None:
    signing_in: SignIns[Conn] = SignIns()
    held = [Conn() for _ in range(1000)]
    for conn in held:
        signing_in.add(conn)
    assert 10 <= signing_in.retry_after(0.0) <= 30  # no rate known: 50 a second, spread by half
    for conn in held[:800]:
        signing_in.discard(conn, now=1.0)  # 800 in the last 10 s: 80 a second
    assert len(signing_in) == 200 and 2 <= signing_in.retry_after(2.0) <= 4
    signing_in.discard(held[800])  # given up: not a completion
    assert 2 <= signing_in.retry_after(20.0) <= 6  # the window moved on: 50 a second again
    many = [Conn() for _ in range(5000)]
    for conn in many:
        signing_in.add(conn)
    assert signing_in.retry_after(20.0) == 30  # at most half a minute
    assert SignIns[Conn]().retry_after(0.0) == 1  # at least a second
