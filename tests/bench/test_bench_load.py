"""bench.load, bench.crowd and bench.run's arithmetic: what a member counts as delivered, duplicated,
late or lost, when an open-loop member sends, how a crowd's user comes back when paced, and what the
figures say. (make bench itself runs on demand, not here.)"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bench.crowd import (
    BACKOFF_MAX,
    DEFAULT_RETRY_AFTER,
    Crowd,
    CrowdTally,
    PacedError,
    RefusedError,
    arrive,
    backoff,
    rate_buckets,
    retry_after,
)
from bench.load import EMOJIS, MemberSpec, Profile, Tally, _besides, _outcome, _Receiver, _send, content, histogram
from bench.measure import Usage
from bench.run import ONLY, PROFILES, besides, busy, crowd_summary, resized, runs, summary


def test_a_receiver_counts_each_message_once_and_knows_when_it_has_all() -> None:
    """Duplicates are counted apart, other runs' and foreign texts ignored; complete at the expected count."""
    tally = Tally()
    latencies = histogram()
    receiver = _Receiver("r1", latencies, tally)
    now = time.monotonic_ns()
    receiver.deliver(content("r1", 0, 0, now))
    receiver.deliver(content("r1", 0, 0, now))
    receiver.deliver(content("r0", 0, 1, now))
    receiver.deliver("hello")
    receiver.expect(2, deadline_ns=now + 10**12)
    assert not receiver.complete.is_set()
    receiver.deliver(content("r1", 1, 0, now))
    assert receiver.complete.is_set()
    assert (tally.delivered, tally.unique, tally.duplicates) == (3, 2, 1)
    assert latencies.get_total_count() == 2


def test_a_delivery_after_the_deadline_is_late_not_delivered() -> None:
    tally = Tally()
    receiver = _Receiver("r1", histogram(), tally)
    receiver.expect(1, deadline_ns=time.monotonic_ns() - 1)
    receiver.deliver(content("r1", 0, 0, time.monotonic_ns()))
    assert (tally.late, tally.unique) == (1, 0)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[int] = []

    async def send(self, text: str) -> str:
        self.sent.append(int(text.split()[3]))
        return "ok"

    async def close(self) -> None:
        pass


async def test_an_open_loop_member_sends_its_share_on_schedule_without_waiting() -> None:
    """Member 1 of 4 at 40 msg/s in total: one message every 0.1 s, offset by 1/40 s, scheduled times."""
    profile = Profile("t", rooms=1, members=4, rate=40, duration=0.5)
    member, tally, replies = Recorder(), Tally(), []
    start = time.monotonic_ns() + 50_000_000
    count = await _send(member, MemberSpec(1, 0, {}), "r", profile, start, start + 500_000_000, tally, replies)
    await asyncio.gather(*replies)
    assert count == tally.sent == 5
    assert member.sent == [start + 25_000_000 + k * 100_000_000 for k in range(5)]


def test_the_summary_counts_what_never_arrived_as_lost() -> None:
    latencies = histogram()
    latencies.record_value(1500)
    tally = Tally(sent=10, delivered=18, unique=17, duplicates=1, expected=20, histogram=latencies.encode())
    tally.outcomes["ok"] = 9
    tally.outcomes["timeout"] = 1
    profile = Profile("t", rooms=1, members=2, rate=5, duration=2)
    usage = {
        "gateway": Usage(cpu_seconds=1.0, group="server"),
        "stand-in": Usage(cpu_seconds=0.5, group="database"),
        "rabbitmq": Usage(cpu_seconds=1.5, group="broker (shared)"),
        "load-1": Usage(cpu_seconds=2.0, group="load"),
    }
    result = summary("peer", profile, [MemberSpec(0, 0, {}), MemberSpec(1, 0, {})], [tally], usage)
    assert (result["expected"], result["delivered"], result["lost"], result["duplicates"]) == (20, 17, 3, 1)
    assert result["ok"] == 9 and result["outcomes"] == {"ok": 9, "timeout": 1}
    assert result["messages_per_second"] is None  # open loop: sent at its rate, whatever the replies
    assert result["latency_ms"]["p50"] == 1.5
    assert result["cpu_ms_per_message"] == 150.0  # server and database CPU per message sent
    assert result["cpu_per_load_cpu"] == 1.5  # server, database and broker per load CPU second


class Mixed(Recorder):
    """A member that also reacts and types: records what it was asked and when."""

    def __init__(self) -> None:
        super().__init__()
        self.others: list[tuple[str, str | None, int]] = []

    async def react(self, emoji: str) -> str:
        self.others.append(("add_reaction", emoji, time.monotonic_ns()))
        return "ok"

    async def typing(self) -> str:
        self.others.append(("typing", None, time.monotonic_ns()))
        return "conflict"


async def test_a_mixed_member_reacts_between_its_messages_and_types_on_its_own_period() -> None:
    """Member 1 of 4 at 40 reactions/s in total: one every 0.1 s, halfway between its messages (offset
    1.5/40 s); typing every 0.25 s, offset by a quarter of it. Open loop: each request is a task."""
    profile = Profile("t", rooms=1, members=4, rate=40, duration=0.5, reactions=40, typing_every=0.25)
    member, others = Mixed(), []
    start = time.monotonic_ns() + 50_000_000
    await _besides(member, MemberSpec(1, 0, {}), profile, start, start + 500_000_000, others)
    await asyncio.gather(*(reply for _, reply in others))
    reacted = [(emoji, at) for request, emoji, at in member.others if request == "add_reaction"]
    typed = [at for request, _, at in member.others if request == "typing"]
    assert len(reacted) == 5 and len(typed) == 2
    assert all(at >= start + 37_500_000 + k * 100_000_000 for k, (_, at) in enumerate(reacted))
    assert all(at >= start + 62_500_000 + k * 250_000_000 for k, at in enumerate(typed))
    assert {emoji for emoji, _ in reacted} <= set(EMOJIS) and len({emoji for emoji, _ in reacted}) > 1
    assert sorted(_outcome(reply) for _, reply in others) == ["conflict"] * 2 + ["ok"] * 5


async def test_a_request_without_a_reply_by_the_deadline_counts_as_no_reply_and_is_cancelled() -> None:
    never = asyncio.create_task(asyncio.Event().wait())
    assert _outcome(never) == "no reply"
    await asyncio.gather(never, return_exceptions=True)
    assert never.cancelled()


def test_the_mixed_profile_is_4x10_at_50_with_reactions_and_typing_for_boochat_only() -> None:
    plain, mixed = PROFILES["4x10@50"], PROFILES["4x10@50-mixed"]
    assert (mixed.rooms, mixed.members, mixed.rate, mixed.duration) == (
        plain.rooms,
        plain.members,
        plain.rate,
        plain.duration,
    )
    assert (mixed.reactions, mixed.typing_every, mixed.mixed, plain.mixed) == (50, 2.0, True, False)
    assert list(PROFILES).index("4x10@50-mixed") == list(PROFILES).index("4x10@50") + 1  # side by side
    assert ONLY["4x10@50-mixed"] == ("boochat", "boochat-split")


def test_the_summary_keeps_the_other_requests_apart_from_the_messages() -> None:
    latencies = histogram()
    latencies.record_value(1500)
    tally = Tally(sent=4, unique=4, expected=4, histogram=latencies.encode())
    tally.outcomes["ok"] = 4
    tally.side.update({"add_reaction ok": 3, "typing ok": 2, "add_reaction no item yet": 1})
    profile = PROFILES["4x10@50-mixed"]
    result = summary("boochat", profile, [MemberSpec(0, 0, {})], [tally], {})
    assert result["outcomes"] == {"ok": 4} and result["ok"] == 4
    assert result["side_outcomes"] == {"add_reaction ok": 3, "typing ok": 2, "add_reaction no item yet": 1}
    assert besides([result]) == [
        "boochat 4x10@50-mixed, besides the messages: add_reaction no item yet 1, add_reaction ok 3, typing ok 2"
    ]


def test_retry_after_reads_seconds_or_a_date_and_falls_back_to_a_second() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after("7") == 7.0
    assert retry_after(" 0 ") == 0.0
    assert retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0  # already past: now
    assert retry_after(None) == retry_after("soon") == retry_after("-3") == DEFAULT_RETRY_AFTER


def test_backoff_doubles_up_to_its_maximum_with_jitter() -> None:
    rng = random.Random(26)
    waits = [[backoff(tries, rng) for _ in range(50)] for tries in (1, 2, 3, 10)]
    assert all(0.25 <= w <= 0.75 for w in waits[0]) and all(0.5 <= w <= 1.5 for w in waits[1])
    assert all(1.0 <= w <= 3.0 for w in waits[2]) and all(w <= 1.5 * BACKOFF_MAX for w in waits[3])
    assert len({round(w, 6) for w in waits[0]}) > 1  # refused clients do not all come back together


class Gate:
    """A server that paces the first tries (503 with Retry-After), refuses one sign-in, then lets in."""

    def __init__(self, outcomes: list[Exception | None]) -> None:
        self.outcomes = outcomes
        self.tried: list[float] = []

    async def open(self, connect: dict[str, Any]) -> Gate:
        self.tried.append(time.monotonic())
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return self

    async def close(self) -> None:
        pass


async def test_a_crowd_user_comes_back_after_retry_after_and_counts_its_tries() -> None:
    """Paced twice (0.2 s, 0.1 s), refused once (a backoff), then in: four tries, each failure counted."""
    gate = Gate([PacedError(0.2), PacedError(0.1), RefusedError("unavailable"), None])
    arrival = await arrive(gate, {}, time.monotonic_ns() + 10 * 10**9)
    assert arrival.held is gate and arrival.tries == 4
    assert arrival.refusals == Counter({"503": 2, "unavailable": 1})
    assert gate.tried[1] - gate.tried[0] >= 0.2 and gate.tried[2] - gate.tried[1] >= 0.1


async def test_a_crowd_user_paced_past_the_deadline_gives_up_without_waiting() -> None:
    gate = Gate([PacedError(60.0)])
    started = time.monotonic()
    arrival = await arrive(gate, {}, time.monotonic_ns() + 10**9)
    assert arrival.held is None and arrival.tries == 1 and arrival.refusals == Counter({"503": 1})
    assert time.monotonic() - started < 0.5


def test_sign_ins_are_bucketed_by_five_seconds_with_the_users_in_by_each_end() -> None:
    second = 10**9
    at = [0, 1 * second, 4 * second, 6 * second, 16 * second]
    assert rate_buckets(at) == [(0.0, 0.6, 3), (5.0, 0.2, 4), (10.0, 0.0, 4), (15.0, 0.2, 5)]
    assert rate_buckets([]) == []


def test_the_crowd_summary_gives_time_to_all_in_tries_and_memory_per_connection() -> None:
    crowd = Crowd("storm", users=4, reconnect=True, at_once=None, within=30)
    first = CrowdTally(users=2, signed_in_ns=[10**9, 3 * 10**9], tries=Counter({1: 1, 3: 1}), paced_users=1)
    first.refusals.update({"503": 2})
    second = CrowdTally(users=2, signed_in_ns=[2 * 10**9], tries=Counter({1: 1}), first_seconds=9.5)
    usage = {
        "gateway": Usage(cpu_seconds=2.0, group="server"),
        "worker users": Usage(cpu_seconds=1.0, group="server"),
        "mongo stand-in": Usage(cpu_seconds=0.5, group="database"),
        "load-1": Usage(cpu_seconds=0.4, group="load"),
    }
    before = {"gateway": 100 * 2**20, "worker users": 50 * 2**20, "mongo stand-in": 10 * 2**20}
    after = {"gateway": 100 * 2**20 + 60 * 1024, "worker users": 50 * 2**20 + 30 * 1024, "mongo stand-in": 10 * 2**20}
    result = crowd_summary("boochat", crowd, [first, second], usage, before, after)
    assert (result["users"], result["signed_in"], result["missing"], result["all_in_seconds"]) == (4, 3, 1, None)
    assert result["tries"] == {"1": 2, "3": 1} and result["refusals"] == {"503": 2} and result["paced_users"] == 1
    assert result["first_sign_in_seconds"] == 9.5
    assert result["gateway_kib_per_connection"] == 20.0  # 60 KiB over the 3 connections in
    assert result["server_kib_per_connection"] == 30.0 and result["database_kib_per_connection"] == 0.0
    assert result["sign_ins_per_second"] == [[0.0, 0.6, 3]]
    everyone = crowd_summary("boochat", crowd, [first, CrowdTally(users=2, signed_in_ns=[0, 10**9])], usage, {}, {})
    assert everyone["all_in_seconds"] == 3.0 and everyone["gateway_kib_per_connection"] is None


def test_busy_says_whether_the_cores_or_one_process_limited_a_figure() -> None:
    def result(machine: float, **cpu: tuple[str, float]) -> dict[str, Any]:
        processes = {label: {"group": group, "cpu_seconds": seconds} for label, (group, seconds) in cpu.items()}
        return {
            "peer": "boochat",
            "profile": {"name": "fanout"},
            "measured_seconds": 10.0,
            "machine_cpu_seconds": machine,
            "processes": processes,
        }

    full = busy(result(19.0, gateway=("server", 8.0), load=("load", 6.0)), cpus=2)
    assert "machine 1.90 of 2 (others' work 0.50)" in full and "load processes took 32%" in full
    one = busy(result(11.0, gateway=("server", 9.5), load=("load", 1.0)), cpus=2)
    assert "gateway was the limit" in one
    assert "neither" in busy(result(4.0, gateway=("server", 2.0), load=("load", 1.0)), cpus=2)


def test_the_scale_profiles_run_for_the_peers_they_are_for() -> None:
    """Issue 26: a storm and idle connections on one gateway (with the websockets floor), fan-out on one
    and two gateways, capacity also scaled out; the scaled peers run nothing else."""
    assert runs("boochat", "storm") and runs("boochat", "idle") and runs("websockets", "idle")
    assert runs("boochat", "fanout") and runs("boochat-gw2", "fanout") and not runs("boochat-gw2", "4x10@50")
    assert runs("boochat-scaled", "1x10-capacity") and not runs("boochat-scaled", "storm")
    assert not runs("socketio", "storm") and not runs("boochat-split", "storm") and runs("boochat-split", "idle")
    assert not runs("websockets", "1x10-capacity")
    assert runs("socketio", "1x10-capacity") and runs("boochat", "4x10@50")
    storm, idle, fanout = PROFILES["storm"], PROFILES["idle"], PROFILES["fanout"]
    assert isinstance(storm, Crowd) and (storm.users, storm.reconnect, storm.at_once) == (5000, True, None)
    assert isinstance(idle, Crowd) and (idle.users, idle.reconnect) == (10_000, False)
    assert isinstance(fanout, Profile) and (fanout.rooms, fanout.members, fanout.rate) == (1, 1000, 10)
    assert resized(storm, 50) == Crowd("storm", 50, True, None, storm.within)
    assert resized(fanout, 50) == Profile("fanout", rooms=1, members=50, rate=10, duration=20)
    assert resized(PROFILES["footprint"], 50) == PROFILES["footprint"]


def test_capacity_is_set_beside_the_socketio_floor_s() -> None:
    results = [
        {"peer": "socketio", "profile": {"name": "1x10-capacity"}, "messages_per_second": 900.0},
        {"peer": "boochat-scaled", "profile": {"name": "1x10-capacity"}, "messages_per_second": 300.0},
    ]
    assert besides(results) == [
        "boochat-scaled 1x10-capacity: 300.0 msg/s, 33% of the socketio floor's 900.0 (target: at least 33 %)"
    ]
