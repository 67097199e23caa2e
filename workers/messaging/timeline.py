"""Messaging's write path: a room item is numbered, stored with its event, and published.

``append`` is the one way an entry (a message, an announcement, or a change entry: an edit, a
delete, a reaction added or removed) enters a room. Items are stored by
one write per room at a time (group commit): the items queued while a write is on its way go
together in the next one, in ``seq`` order, so a busy room costs one insert per batch, not one per
send, and its sends do not wait for each other's round trips. Each stored item's event goes to the
worker's outbox in ``seq`` order, off the sender's path (the reply rides on the room's delivery);
``Publishing`` remembers what went out until one write marks it published.

What this process knows of each room's timeline is kept in ``TIMELINES`` (``Runtime.kept``).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from contracts.envelope import Fact, Failure, Reply
from contracts.events import ItemAdded, ItemChanged
from contracts.shapes import RoomItem
from workers import presence
from workers.messaging import domain, storage
from workers.messaging.domain import RoomCopy
from workers.runtime.context import ATTEMPTS, Context, Forwarded, Kept, Runtime
from workers.runtime.entries import OutboxEntry
from workers.runtime.outbox import RELAY_AFTER, Caller, Outbox, carry, stamp
from workers.runtime.store import ConcurrencyError

COPY_STALE_AFTER = 1.0  # seconds a room copy read by this process serves sends (names, images; see append)
# Rooms whose timeline a process keeps: the one sent to least recently is forgotten beyond this, and
# read again (its last seq, one query) on its next send. About 2 KB each.
TIMELINES_KEPT = 10_000
WRITE_BATCH = 100  # items one write of a room stores at most
MARK_BATCH = 1000  # items one write marks published at most
# Confirmed items are marked published by one write per this many seconds, not one per publish: under
# load that write would be a second per send. A crash leaves at most this long unmarked, which the
# relay publishes again (consumers drop what they had). Shorter than RELAY_AFTER.
MARK_EVERY = 1.0


@dataclass
class Publishing:
    """Items whose events this process handed to the outbox and has not marked published yet."""

    pending: set[str] = field(default_factory=set)  # their event ids: the relay leaves these
    sent: list[tuple[storage.Published, asyncio.Future[None]]] = field(default_factory=list)

    def publish(self, outbox: Outbox, item: storage.Published, sent: OutboxEntry | None = None) -> None:
        """Hand ``item``'s event to the outbox (as ``sent``, when a reply rides on it)."""
        self.pending.add(item.event.event_id)
        self.sent.append((item, outbox.publish((sent or item.event).messages())))

    async def mark(self) -> None:
        """Mark what the broker confirmed since the last call, a write per ``MARK_BATCH`` items;
        what failed to publish is left to the relay."""
        settled = [(item, published) for item, published in self.sent if published.done()]
        self.sent = [(item, published) for item, published in self.sent if not published.done()]
        for item, published in settled:
            if published.cancelled() or published.exception() is not None:
                self.pending.discard(item.event.event_id)
        confirmed = [item for item, published in settled if not published.cancelled() and not published.exception()]
        for start in range(0, len(confirmed), MARK_BATCH):
            batch = confirmed[start : start + MARK_BATCH]
            try:
                await storage.mark_published([item.item_id for item in batch])
            finally:  # unmarked, the relay publishes them again: at least once
                self.pending.difference_update(item.event.event_id for item in batch)


@dataclass
class Queued:
    """An item waiting for its room's write, with its event, and the command's ``reply`` to carry on
    it to ``caller`` once it is stored. ``stored`` is settled once the write is done: with whether
    the reply rides on the item's delivery."""

    item: RoomItem
    entry: OutboxEntry
    caller: Caller | None
    reply: Reply | None
    stored: asyncio.Future[bool]

    def carrying(self) -> OutboxEntry | None:
        """The entry with the reply riding on it (``carry``), or None: it goes on its own."""
        return carry(self.entry, self.caller, self.reply) if self.reply is not None else None


@dataclass
class Timeline:
    """What this process knows of a room's timeline: its last ``seq`` (counting the items queued for
    the room's write), and the room's copy as read after the item at that ``seq`` was stored
    (``read_at``: monotonic seconds; None: read it again)."""

    last_seq: int
    copy: RoomCopy | None = None
    read_at: float = 0.0
    queued: list[Queued] = field(default_factory=list)
    writing: asyncio.Task[None] | None = None

    def stale(self) -> bool:
        return self.copy is None or time.monotonic() - self.read_at > COPY_STALE_AFTER

    def store(self, outbox: Outbox, publishing: Publishing, queued: Queued) -> asyncio.Future[bool]:
        """Queue ``queued`` (its item at ``last_seq + 1``) for the room's next write. The future is
        settled once the item is stored and handed to the outbox; it raises ``DuplicateKeyError``
        when the item's id or ``seq`` was taken, or the write's error when the write failed."""
        assert queued.item.seq == self.last_seq + 1
        self.queued.append(queued)
        self.last_seq = queued.item.seq
        if self.writing is None:
            self.writing = asyncio.create_task(self._write(outbox, publishing))
        return queued.stored

    async def _write(self, outbox: Outbox, publishing: Publishing) -> None:
        try:
            while self.queued:
                batch, self.queued = self.queued[:WRITE_BATCH], self.queued[WRITE_BATCH:]
                try:
                    count = await storage.insert_items([(q.item, q.entry) for q in batch])
                    for q in batch[:count]:  # published in seq order, before their senders hear
                        carrying = q.carrying()
                        publishing.publish(outbox, storage.Published(q.item.id, q.entry), carrying)
                        _settle(q.stored, carrying is not None)
                except Exception as error:  # each send not yet answered fails as its own write would
                    self._fail(batch, error)
                    continue
                if count < len(batch):
                    self._fail(batch[count:], DuplicateKeyError(f"seq {batch[count].item.seq} or its item id is taken"))
        finally:
            self.writing = None

    def _fail(self, failed: list[Queued], error: Exception) -> None:
        """Items queued after a failed one were numbered after it: they fail with it, and the
        timeline goes back to the last stored ``seq`` (its copy is read again, as after a move)."""
        failed, self.queued = failed + self.queued, []
        self.last_seq, self.copy = failed[0].item.seq - 1, None
        for q in failed:
            _settle(q.stored, error)


def _settle(future: asyncio.Future[bool], outcome: bool | Exception) -> None:
    if future.done():  # its sender was cancelled meanwhile
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


@dataclass(frozen=True)
class Appended:
    """An item in its room, and whether the command's reply rides on its delivery (``Carried``)."""

    item: RoomItem
    carried: bool = False


@dataclass
class Timelines:
    """This process's timelines, the one written least recently first, and what it publishes."""

    rooms: OrderedDict[str, Timeline] = field(default_factory=OrderedDict)
    publishing: Publishing = field(default_factory=Publishing)


TIMELINES: Kept[Timelines] = Kept("timelines", Timelines)


async def append(
    ctx: Context,
    room_id: str,
    item_id: str,
    decide: Callable[[RoomCopy | None, int], Fact],
    reply: Callable[[RoomItem], BaseModel] | None = None,
    target: int | None = None,
) -> Appended:
    """Store the item ``decide(copy, seq)`` makes at the room's next ``seq``, then have it published,
    with the command's ``reply`` riding on its room delivery when the caller offered a key (``carry``).

    The unique ``(room_id, seq)`` index is the check: a replica that wrote first takes the number
    and this one publishes what that one wrote (so the room's order holds) before trying the next.
    The unique item id makes a second copy of the same command, or of the same announcement, act
    once. A change entry (``target``: the ``seq`` of the item it changes) was decided from that
    item's state as read before: when the timeline moved under this process with a change of the
    same item, it raises ``ConcurrencyError`` (the command is decided again, from the item as it
    now is).

    This process remembers the last ``seq`` and the copy of each room it writes to (the latest
    ``TIMELINES_KEPT``), so a send reads nothing.
    The copy is safe to decide from because every membership change writes the copy first and then
    its announcement into the timeline, before rooms replies: a copy read after this process last
    learned the room's ``seq`` holds every change up to it, and an insert at the next ``seq``
    succeeds only if nothing (no announcement) came in between. So the copy is read again whenever
    the timeline moved under this process, after this process wrote an announcement, when it
    refuses someone (a member added meanwhile must not be refused), and after ``COPY_STALE_AFTER``
    (renames and images, which write no item).
    """
    timelines = ctx.runtime.kept(TIMELINES)
    outbox, publishing = ctx.runtime.outbox, timelines.publishing
    for _ in range(ATTEMPTS):
        async with ctx.lock(room_id):
            known = await _timeline(timelines, outbox, room_id)
            reread = known.stale()
            if reread:
                known.copy, known.read_at = (await storage.copy(room_id))[1], time.monotonic()
            try:
                fact = decide(known.copy, known.last_seq + 1)
            except domain.MessagingError:
                if reread:
                    raise
                known.copy = None  # refused by a copy read earlier: decide again from the stored one
                continue
            item, routed = _routed(ctx, fact)
            entry = distinct(stamp(routed, item.seq, ctx.cause, item.sent_at))
            answer = Reply.of(reply(item)) if reply else None
            queued = Queued(item, entry, ctx.caller, answer, asyncio.get_running_loop().create_future())
            stored = known.store(outbox, publishing, queued)
            if item.kind == "announcement":
                known.copy = None  # this process announced a change: its copy is read again next time
        try:
            carried = await stored  # the room's lock is free meanwhile: the next sends join the next write
        except DuplicateKeyError:
            async with ctx.lock(room_id):
                if (done := await storage.item(item_id)) is not None:
                    if done.published_at is None and done.event is not None:  # its writer may have crashed
                        publishing.publish(outbox, storage.Published(done.id, done.event))
                    return Appended(first_outcome(done))
                moved = await storage.stored_after(room_id, known.last_seq)
                for earlier in moved:
                    publishing.publish(outbox, earlier)
                    known.last_seq = earlier.event.version
                known.copy = None  # the timeline moved under this process: perhaps a membership change
            if target is not None and any(_changes(earlier.event, target) for earlier in moved):
                raise ConcurrencyError(f"{room_id}/{target}") from None
            continue
        return Appended(item, carried)
    raise ConcurrencyError(room_id)


def _routed(ctx: Context, fact: Fact) -> tuple[RoomItem, Fact]:
    """The entry a fact adds, and the fact routed also for pushes when it is a new item some of whose
    recipients are offline (a change entry is never pushed)."""
    if isinstance(fact.payload, ItemChanged):
        return fact.payload.change, fact
    assert isinstance(fact.payload, ItemAdded)
    offline = presence.offline(fact.payload.recipients, presence.PRESENCE.state(ctx.runtime))
    return fact.payload.item, domain.routed_for_pushes(fact, offline)


def _changes(event: OutboxEntry, target: int) -> bool:
    """Whether ``event`` is a change entry's, of the item at ``target``."""
    return event.type == "room.item_changed" and event.payload.get("change", {}).get("target_seq") == target


def distinct(entry: OutboxEntry) -> OutboxEntry:
    """``entry`` with each different delivery's id its own: a change sends one ``room.item_changed``
    per item it alters (the item, replies quoting it) to the same room, and a gateway drops a
    repeated id. Copies of one delivery under several keys (an announcement to the room and to its
    newcomers) keep their one id: a gateway is to drop the second."""
    first: dict[str, object] = {}
    deliveries = []
    for n, routed in enumerate(entry.deliveries):
        delivery_id = str(routed.body.get("id"))
        data = first.setdefault(delivery_id, routed.body.get("data"))
        if data != routed.body.get("data"):
            routed = routed.model_copy(update={"body": {**routed.body, "id": f"{delivery_id}/{n}"}})
        deliveries.append(routed)
    return entry.model_copy(update={"deliveries": deliveries}) if deliveries != entry.deliveries else entry


async def _timeline(timelines: Timelines, outbox: Outbox, room_id: str) -> Timeline:
    """The room's timeline as this process knows it, read (its last ``seq``) if it knows none."""
    known = timelines.rooms.get(room_id)
    if known is not None:
        timelines.rooms.move_to_end(room_id)
        return known
    known = timelines.rooms[room_id] = Timeline(await storage.last_seq(room_id))
    while len(timelines.rooms) > TIMELINES_KEPT:  # the room written least recently
        timelines.rooms.popitem(last=False)
    # Another replica's latest items may still be on their way: this process publishes them too,
    # before its own, so gateways get the room in order (they drop copies).
    for earlier in await storage.unpublished_in(room_id, known.last_seq):
        timelines.publishing.publish(outbox, earlier)
    return known


def first_outcome(done: storage.Item) -> RoomItem:
    """What the first copy of a send stored: its item, or its refusal (raised again)."""
    if done.refusal is not None:
        raise Forwarded(Failure.model_validate(done.refusal))
    return done.view()


async def relay_items(runtime: Runtime) -> None:
    """Publish items whose publish a crash cut off (their writer never marked them)."""
    publishing = runtime.kept(TIMELINES).publishing
    for item in await storage.unpublished(runtime.now() - RELAY_AFTER):
        if item.event.event_id not in publishing.pending:  # queued here, still on its way
            publishing.publish(runtime.outbox, item)


async def mark_published(runtime: Runtime) -> None:
    await runtime.kept(TIMELINES).publishing.mark()
