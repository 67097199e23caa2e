"""Crowds of connections (issue 26): the ``storm`` and ``idle`` profiles' load side.

Nobody sends a message here: what is measured is signing in and staying connected. Users are spread
over the load processes as members are (``bench.load``); a run goes:

1. a reconnect storm (``reconnect``) first signs every user in once, ``FIRST_AT_ONCE`` at a time
   per process, and closes them all: the users exist and hold tokens, as before a gateway restart;
2. every process waits at ``ready``; the parent waits until the server is idle, reads its memory,
   and publishes a start time;
3. from the start, every user connects and signs in (``at_once`` at a time per process, or all at
   once), trying again until it is in or the profile's ``within`` seconds are over: a handshake
   refused with HTTP 503 comes back after its ``Retry-After`` (the gateway paces a storm so), any
   other failure after a growing, jittered backoff; every try is counted;
4. every process waits at ``done`` with its users connected; the parent reads the server's memory
   and CPU, then sets ``release``; the processes close their connections and report a
   ``CrowdTally`` each.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

FIRST_AT_ONCE = 10  # users of one load process signing in at once for the first time (a storm's setup)
FIRST_WITHIN = 1200.0  # seconds a load process may take to sign its users in the first time
RELEASE_WITHIN = 300.0  # seconds the connections are held at most while the parent measures
DEFAULT_RETRY_AFTER = 1.0  # seconds, for a 503 whose Retry-After is missing or unreadable
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0  # seconds: another failure's wait, doubling per try up to the max
BUCKET_SECONDS = 5.0  # sign-ins per second are reported over buckets this long


@dataclass(frozen=True)
class Crowd:
    name: str
    users: int  # connections, one user each
    reconnect: bool  # sign everyone in once and close first: the measured phase is everyone coming back
    at_once: int | None  # connections opening at once per load process in the measured phase; None: all
    within: float  # seconds the measured phase may take: who is not in by then is counted missing

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.name.lower())


class PacedError(Exception):
    """The server refused the handshake for now (HTTP 503) and said when to come back."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"come back in {seconds:g} s")
        self.seconds = seconds


class RefusedError(Exception):
    """The server refused the sign-in (``unavailable``, ``rate_limited``...): the error code."""


class Held(Protocol):
    async def close(self) -> None: ...


class CrowdClient(Protocol):
    async def open(self, connect: dict[str, Any]) -> Held:
        """One try: connect and sign in; raises ``PacedError``, ``RefusedError``, or what broke."""
        ...


def retry_after(value: str | None, now: datetime | None = None) -> float:
    """Seconds a ``Retry-After`` header asks to wait (RFC 9110: whole seconds, or an HTTP date);
    ``DEFAULT_RETRY_AFTER`` when it is missing or unreadable, 0 for a date already past."""
    if value is None:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def backoff(tries: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``tries``-th failure that was not a 503: doubling from
    ``BACKOFF_FIRST`` up to ``BACKOFF_MAX``, times a random 0.5 to 1.5 so failures do not return together."""
    base = min(BACKOFF_FIRST * 2.0 ** (tries - 1), BACKOFF_MAX)
    return base * (rng.uniform(0.5, 1.5) if rng is not None else random.uniform(0.5, 1.5))


@dataclass
class Arrival:
    """One user's way in: the connection (None: not in by the deadline), its tries and when it got in."""

    held: Held | None
    tries: int
    at_ns: int
    refusals: Counter[str]  # what each failed try met: "503", "unavailable", "TimeoutError"...


async def arrive(client: CrowdClient, connect: dict[str, Any], deadline_ns: int) -> Arrival:
    """Connect and sign in, honouring every 503's ``Retry-After``, until in or ``deadline_ns``."""
    tries = 0
    refusals: Counter[str] = Counter()
    while (left := (deadline_ns - time.monotonic_ns()) / 1e9) > 0:
        tries += 1
        try:
            held = await asyncio.wait_for(client.open(connect), left)
            return Arrival(held, tries, time.monotonic_ns(), refusals)
        except PacedError as paced:
            refusals["503"] += 1
            wait = paced.seconds
        except RefusedError as refused:
            refusals[str(refused)] += 1
            wait = backoff(tries)
        except Exception as error:  # the handshake or the connection broke (OSError, a timeout...): again
            refusals[type(error).__name__] += 1
            wait = backoff(tries)
        if time.monotonic_ns() + wait * 1e9 >= deadline_ns:
            break
        await asyncio.sleep(wait)
    return Arrival(None, tries, time.monotonic_ns(), refusals)


@dataclass
class CrowdTally:
    """What one load process saw; the parent adds them up."""

    users: int = 0
    signed_in_ns: list[int] = field(default_factory=list)  # after the start, of each user who got in
    tries: Counter[int] = field(default_factory=Counter)  # tries it took -> users who got in
    refusals: Counter[str] = field(default_factory=Counter)  # over every try of the measured phase
    paced_users: int = 0  # users told to come back (503) at least once
    first_seconds: float = 0.0  # reconnect: seconds this process took to sign its users in once
    first_missing: int = 0  # reconnect: users it could not sign in the first time

    def add(self, other: CrowdTally) -> None:
        self.users += other.users
        self.signed_in_ns += other.signed_in_ns
        self.tries.update(other.tries)
        self.refusals.update(other.refusals)
        self.paced_users += other.paced_users
        self.first_seconds = max(self.first_seconds, other.first_seconds)
        self.first_missing += other.first_missing


def rate_buckets(signed_in_ns: list[int], seconds: float = BUCKET_SECONDS) -> list[tuple[float, float, int]]:
    """Sign-ins over time: for each ``seconds`` from the start until the last one, (bucket start in
    seconds, sign-ins per second in it, users in by its end): does the rate hold as more are online?"""
    if not signed_in_ns:
        return []
    width = int(seconds * 1e9)
    counts = Counter(max(at, 0) // width for at in signed_in_ns)
    buckets, online = [], 0
    for bucket in range(max(counts) + 1):
        online += counts[bucket]
        buckets.append((bucket * seconds, round(counts[bucket] / seconds, 1), online))
    return buckets


@dataclass
class CrowdShared:
    """Synchronisation between the parent and the load processes."""

    ready: Any  # multiprocessing Barrier: every process ready for the measured phase (and the parent)
    done: Any  # Barrier: every process has its users in, or gave up on them (and the parent)
    start_ns: Any  # Value('q'): when the measured phase starts, CLOCK_MONOTONIC ns
    go: Any  # Event: start_ns is set
    release: Any  # Event: the parent has measured; close everything

    @classmethod
    def create(cls, context: multiprocessing.context.BaseContext, processes: int) -> CrowdShared:
        return cls(
            ready=context.Barrier(processes + 1),
            done=context.Barrier(processes + 1),
            start_ns=context.Value("q", 0),
            go=context.Event(),
            release=context.Event(),
        )

    def abort(self) -> None:
        self.ready.abort()
        self.done.abort()


def crowd_process(
    client_module: str, crowd: Crowd, connects: list[dict[str, Any]], shared: CrowdShared, results: Any
) -> None:
    """Entry point of one load process: bring ``connects``' users in, put a ``CrowdTally`` on ``results``."""
    client: CrowdClient = importlib.import_module(client_module).CROWD
    try:
        results.put(("ok", asyncio.run(_crowd(client, crowd, connects, shared))))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent handles it
        return
    except BaseException as error:  # the parent must hear of it, or it waits at a barrier for nothing
        shared.abort()
        results.put(("error", f"{type(error).__name__}: {error}"))
        raise


async def _crowd(client: CrowdClient, crowd: Crowd, connects: list[dict[str, Any]], shared: CrowdShared) -> CrowdTally:
    tally = CrowdTally(users=len(connects))
    loop = asyncio.get_running_loop()
    if crowd.reconnect:
        started = time.monotonic_ns()
        first = await _arrive_all(client, connects, FIRST_AT_ONCE, started + int(FIRST_WITHIN * 1e9))
        tally.first_seconds = round((max(a.at_ns for a in first) - started) / 1e9, 2)
        tally.first_missing = sum(a.held is None for a in first)
        await _close(first)
    await loop.run_in_executor(None, shared.ready.wait)
    await loop.run_in_executor(None, shared.go.wait)
    start_ns = shared.start_ns.value
    delay = (start_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)
    arrivals = await _arrive_all(client, connects, crowd.at_once, start_ns + int(crowd.within * 1e9))
    try:
        for arrival in arrivals:
            tally.refusals.update(arrival.refusals)
            tally.paced_users += arrival.refusals["503"] > 0
            if arrival.held is not None:
                tally.signed_in_ns.append(arrival.at_ns - start_ns)
                tally.tries[arrival.tries] += 1
        await loop.run_in_executor(None, shared.done.wait)
        await loop.run_in_executor(None, shared.release.wait, RELEASE_WITHIN)
    finally:
        await _close(arrivals)
    return tally


async def _arrive_all(
    client: CrowdClient, connects: list[dict[str, Any]], at_once: int | None, deadline_ns: int
) -> list[Arrival]:
    limit = asyncio.Semaphore(at_once or max(len(connects), 1))

    async def one(connect: dict[str, Any]) -> Arrival:
        async with limit:
            return await arrive(client, connect, deadline_ns)

    return await asyncio.gather(*(one(connect) for connect in connects))


async def _close(arrivals: list[Arrival]) -> None:
    await asyncio.gather(*(a.held.close() for a in arrivals if a.held is not None), return_exceptions=True)
