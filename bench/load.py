"""The load: members of rooms, spread over separate OS processes, each one asyncio loop.

Every member is one connection of its own (a WebSocket, or Matrix's HTTP API). A run goes:

1. each load process connects its members, then waits at ``ready`` (the parent is the last party);
2. the parent publishes a start time; members send on their schedule:
   - open loop (a rate): member ``i`` of ``n`` sends at ``start + (i + k * n) / rate`` for every ``k``
     that falls inside the duration, without waiting for replies, so the server's slowness never slows
     the offered load;
   - capacity (no rate): each member sends its next message as soon as the reply to the last came back,
     until the duration is over;
   - mixed (``reactions``, ``typing_every``): besides its messages, open loop too, each member sends
     ``add_reaction`` on the latest item of its room it has seen, at ``reactions`` per second in
     total, and ``typing`` every ``typing_every`` seconds; their replies are counted apart
     (``Tally.side``), so the message figures stay the messages' own;
3. each process adds what it sent to the shared per-room counts, waits at ``sent``, and then every
   member waits until it has received every message sent to its room, or the drain deadline passed;
4. each process reports its counts and its latency histogram to the parent.

A message's content carries its sender, its number and the time it was scheduled (``CLOCK_MONOTONIC``,
the same clock in every process of the machine), so the receiver measures send->deliver itself, and
knows duplicates and losses. Scheduled, not actually sent: a client that falls behind its schedule
counts that delay too (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from hdrh.histogram import HdrHistogram

# Latency histograms count microseconds, from 1 us to 10 minutes, with 3 significant digits.
LOWEST_US, HIGHEST_US, DIGITS = 1, 600_000_000, 3
CONNECT_TIMEOUT = 300.0  # seconds for a load process to connect all its members
# Members of one load process connecting at once: 2,000 sign-ins in the same instant are a storm no
# real crowd makes, and on two busy cores some would wait past the request timeout.
CONNECTING = 5


def histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


@dataclass(frozen=True)
class Profile:
    name: str
    rooms: int
    members: int  # per room; every member sends and receives
    rate: float | None  # messages/s offered in total; None: capacity (send when the reply is back)
    duration: float  # seconds of sending
    drain: float = 60.0  # seconds allowed after the sending for deliveries to arrive
    reactions: float = 0.0  # add_reaction requests/s in total besides the messages, open loop
    typing_every: float | None = None  # seconds between one member's ``typing`` requests; None: none

    @property
    def mixed(self) -> bool:
        return self.reactions > 0 or self.typing_every is not None

    @property
    def slug(self) -> str:
        """The name as user ids and room names may spell it (lower case letters, digits, dashes)."""
        return "".join(c if c.isalnum() else "-" for c in self.name.lower())


@dataclass
class MemberSpec:
    """What a load process needs to act as one member (picklable): filled in by the peer."""

    index: int  # 0 .. rooms * members - 1, unique in the profile
    room: int  # 0 .. rooms - 1
    connect: dict[str, Any]  # peer-specific: URL, credentials, room id


class Member(Protocol):
    """One member's connection, as each peer's client module implements it."""

    async def send(self, content: str) -> str:
        """Send ``content`` to the member's room; the outcome: ``ok`` or an error code."""
        ...

    async def close(self) -> None: ...


class MixedMember(Member, Protocol):
    """A member that also reacts and types (Boochat's): the mixed profiles' other requests."""

    async def react(self, emoji: str) -> str:
        """``add_reaction`` with ``emoji`` on the latest item of the room it has seen; the outcome."""
        ...

    async def typing(self) -> str:
        """``typing`` in its room; the outcome."""
        ...


# What members react with, in turn: fewer than the 20 distinct emojis an item may hold.
EMOJIS = ("\U0001f44d", "\u2764\ufe0f", "\U0001f602", "\U0001f389", "\U0001f440", "\U0001f525", "\U0001f64f", "\u2705")

Deliver = Any  # Callable[[str], None]: called with the content of every message the member receives


class Client(Protocol):
    async def open(self, connect: dict[str, Any], deliver: Deliver) -> Member: ...


@dataclass
class Tally:
    """What one load process saw; the parent adds them up."""

    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # reply outcome -> count ("no reply" too)
    side: Counter[str] = field(default_factory=Counter)  # mixed profiles: "<request> <outcome>" -> count
    delivered: int = 0  # deliveries of this run's messages, duplicates included
    unique: int = 0
    duplicates: int = 0
    expected: int = 0
    late: int = 0  # deliveries after the drain deadline (not counted as delivered)
    gaps: int = 0  # times a member was told it had skipped messages (Matrix's limited sync)
    histogram: bytes = b""  # hdrhistogram's encoding of send->deliver latencies, microseconds

    def add(self, other: Tally) -> None:
        self.sent += other.sent
        self.outcomes.update(other.outcomes)
        self.side.update(other.side)
        self.delivered += other.delivered
        self.unique += other.unique
        self.duplicates += other.duplicates
        self.expected += other.expected
        self.late += other.late
        self.gaps += other.gaps


def content(run: str, sender: int, number: int, scheduled_ns: int) -> str:
    return f"{run} {sender} {number} {scheduled_ns}"


def parse(run: str, text: str) -> tuple[int, int, int] | None:
    """(sender, number, scheduled_ns) of one of this run's messages; None for anything else."""
    parts = text.split(" ")
    if len(parts) != 4 or parts[0] != run:
        return None
    return int(parts[1]), int(parts[2]), int(parts[3])


@dataclass
class Shared:
    """Synchronisation between the parent and the load processes."""

    ready: Any  # multiprocessing Barrier: every process connected (and the parent)
    sent: Any  # Barrier: every process finished sending (and the parent)
    start_ns: Any  # Value('q'): when sending starts, CLOCK_MONOTONIC ns; set by the parent after `ready`
    go: Any  # Event: start_ns is set
    per_room: Any  # Array('q'): messages sent to each room

    @classmethod
    def create(cls, context: multiprocessing.context.BaseContext, processes: int, rooms: int) -> Shared:
        return cls(
            ready=context.Barrier(processes + 1),
            sent=context.Barrier(processes + 1),
            start_ns=context.Value("q", 0),
            go=context.Event(),
            per_room=context.Array("q", rooms),
        )


def load_process(
    client_module: str, run: str, profile: Profile, specs: list[MemberSpec], shared: Shared, results: Any
) -> None:
    """Entry point of one load process: act as ``specs``' members, put a ``Tally`` on ``results``."""
    client: Client = importlib.import_module(client_module).CLIENT
    try:
        tally = asyncio.run(_members(client, run, profile, specs, shared))
        results.put(("ok", tally))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent handles it
        return
    except BaseException as error:  # the parent must hear of it, or it waits at a barrier for nothing
        shared.ready.abort()
        shared.sent.abort()
        results.put(("error", f"{type(error).__name__}: {error}"))
        raise


class _Receiver:
    """One member's inbox: who sent what, and when it is complete."""

    def __init__(self, run: str, latencies: HdrHistogram, tally: Tally) -> None:
        self.run = run
        self.latencies = latencies
        self.tally = tally
        self.seen: set[tuple[int, int]] = set()
        self.expected: int | None = None
        self.deadline_ns: int | None = None
        self.complete = asyncio.Event()

    def deliver(self, text: str) -> None:
        now = time.monotonic_ns()
        message = parse(self.run, text)
        if message is None:
            return
        if self.deadline_ns is not None and now > self.deadline_ns:
            self.tally.late += 1
            return
        sender, number, scheduled = message
        self.tally.delivered += 1
        if (sender, number) in self.seen:
            self.tally.duplicates += 1
            return
        self.seen.add((sender, number))
        self.tally.unique += 1
        self.latencies.record_value(max((now - scheduled) // 1000, LOWEST_US))
        self._check()

    def expect(self, count: int, deadline_ns: int) -> None:
        self.expected = count
        self.deadline_ns = deadline_ns
        self._check()

    def _check(self) -> None:
        if self.expected is not None and len(self.seen) >= self.expected:
            self.complete.set()


async def _members(client: Client, run: str, profile: Profile, specs: list[MemberSpec], shared: Shared) -> Tally:
    tally = Tally()
    latencies = histogram()
    receivers = [_Receiver(run, latencies, tally) for _ in specs]
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(CONNECTING)

    async def open_one(spec: MemberSpec, receiver: _Receiver) -> Member:
        async with limit:
            return await client.open(spec.connect, receiver.deliver)

    async with asyncio.timeout(CONNECT_TIMEOUT):
        members = await asyncio.gather(*(open_one(s, r) for s, r in zip(specs, receivers, strict=True)))
    try:
        await loop.run_in_executor(None, shared.ready.wait)
        await loop.run_in_executor(None, shared.go.wait)
        start_ns = shared.start_ns.value
        end_ns = start_ns + int(profile.duration * 1e9)
        deadline_ns = end_ns + int(profile.drain * 1e9)
        replies: list[asyncio.Task[str]] = []
        others: list[tuple[str, asyncio.Task[str]]] = []  # mixed profiles: (request, its reply)
        sends = [
            _send(member, spec, run, profile, start_ns, end_ns, tally, replies)
            for member, spec in zip(members, specs, strict=True)
        ]
        besides = [
            _besides(cast(MixedMember, member), spec, profile, start_ns, end_ns, others)
            for member, spec in zip(members, specs, strict=True)
            if profile.mixed
        ]
        counts, _ = await asyncio.gather(asyncio.gather(*sends), asyncio.gather(*besides))
        with shared.per_room.get_lock():
            for spec, count in zip(specs, counts, strict=True):
                shared.per_room[spec.room] += count
        await loop.run_in_executor(None, shared.sent.wait)
        for spec, receiver in zip(specs, receivers, strict=True):
            receiver.expect(shared.per_room[spec.room], deadline_ns)
            tally.expected += shared.per_room[spec.room]
        remaining = max(deadline_ns - time.monotonic_ns(), 0) / 1e9
        waits = [asyncio.wait_for(r.complete.wait(), remaining) for r in receivers]
        await asyncio.gather(*waits, return_exceptions=True)  # a timeout here is a loss, counted below
        if pending := [r for r in (*replies, *(r for _, r in others)) if not r.done()]:  # replies may trail
            await asyncio.wait(pending, timeout=max(deadline_ns - time.monotonic_ns(), 0) / 1e9)
        for request, reply in others:
            tally.side[f"{request} {_outcome(reply)}"] += 1
        for reply in replies:  # open loop: replies that never came by the deadline
            tally.outcomes[_outcome(reply)] += 1
    finally:
        await asyncio.gather(*(member.close() for member in members), return_exceptions=True)
    tally.gaps = sum(getattr(member, "gaps", 0) for member in members)
    tally.histogram = latencies.encode()
    return tally


def _outcome(reply: asyncio.Task[str]) -> str:
    """An open-loop request's outcome at the deadline: its reply, ``no reply`` (then cancelled), or
    the error that broke the connection under it."""
    if not reply.done():
        reply.cancel()
        return "no reply"
    if (error := reply.exception()) is not None:
        return type(error).__name__
    return reply.result()


def schedule(index: int, senders: int, rate: float, start_ns: int, end_ns: int, offset: float = 0.0) -> list[int]:
    """Open loop: when member ``index`` of ``senders`` sends its share of ``rate`` requests/s in all,
    from ``start_ns`` (shifted by ``offset`` of the interval between two requests) until ``end_ns``."""
    interval_ns = int(senders / rate * 1e9)
    first = start_ns + int((index + offset) / rate * 1e9)
    return list(range(first, end_ns, interval_ns))


async def _besides(
    member: MixedMember,
    spec: MemberSpec,
    profile: Profile,
    start_ns: int,
    end_ns: int,
    others: list[tuple[str, asyncio.Task[str]]],
) -> None:
    """A mixed profile's other requests of one member, open loop: reactions halfway between the
    messages, ``typing`` every ``typing_every`` seconds (members spread over the period)."""
    senders = profile.rooms * profile.members
    planned: list[tuple[int, str]] = []
    if profile.reactions > 0:
        planned += [
            (at, "add_reaction") for at in schedule(spec.index, senders, profile.reactions, start_ns, end_ns, 0.5)
        ]
    if profile.typing_every is not None:
        planned += [
            (at, "typing") for at in schedule(spec.index, senders, senders / profile.typing_every, start_ns, end_ns)
        ]
    for count, (at, request) in enumerate(sorted(planned)):
        delay = (at - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        call = (
            member.react(EMOJIS[(spec.index + count) % len(EMOJIS)]) if request == "add_reaction" else member.typing()
        )
        others.append((request, asyncio.create_task(call)))


async def _send(
    member: Member,
    spec: MemberSpec,
    run: str,
    profile: Profile,
    start_ns: int,
    end_ns: int,
    tally: Tally,
    replies: list[asyncio.Task[str]],
) -> int:
    """Send this member's share; how many messages it sent."""
    count = 0
    if profile.rate is None:  # capacity: one message in flight per member
        while time.monotonic_ns() < end_ns:
            scheduled = time.monotonic_ns()
            try:
                outcome = await asyncio.wait_for(member.send(content(run, spec.index, count, scheduled)), profile.drain)
            except TimeoutError:
                outcome = "no reply"
            except Exception as error:  # the connection broke: an outcome like any other
                outcome = type(error).__name__
            count += 1
            tally.sent += 1
            tally.outcomes[outcome] += 1
            if outcome != "ok":
                await asyncio.sleep(0.1)  # a refusal comes back at once: do not spin on it
        return count
    senders = profile.rooms * profile.members
    interval_ns = int(senders / profile.rate * 1e9)
    scheduled = start_ns + int(spec.index / profile.rate * 1e9)
    while scheduled < end_ns:
        delay = (scheduled - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        replies.append(asyncio.create_task(member.send(content(run, spec.index, count, scheduled))))
        count += 1
        tally.sent += 1
        scheduled += interval_ns
    return count
