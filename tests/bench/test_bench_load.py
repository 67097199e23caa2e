"""bench.load and bench.run's arithmetic: what a member counts as delivered, duplicated, late or lost,
and when an open-loop member sends. (make bench itself runs on demand, not here.)"""

from __future__ import annotations

import asyncio
import time

from bench.load import MemberSpec, Profile, Tally, _Receiver, _send, content, histogram
from bench.measure import Usage
from bench.run import summary


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
