"""Messaging's collections: the copies of rooms, the items (each stored with its event, so storing
an item is the one write of a send; change entries too), what changes made of items (``item_states``,
a projection) and read marks."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beanie import Document, SortDirection
from pydantic import field_validator
from pymongo import ASCENDING, IndexModel
from pymongo.errors import BulkWriteError, DuplicateKeyError

from contracts.common import format_time
from contracts.shapes import CHANGE_KINDS, SHOWN_KINDS, Attachment, Facts, ItemKind, Quote, Reaction, RoomItem
from workers.messaging import domain
from workers.messaging.domain import ItemState, Page, ReadMark, RoomCopy
from workers.presence import PresenceDoc
from workers.runtime.entries import OutboxEntry
from workers.runtime.store import StateDocument, state_document, write

# Compound, not single-field: the stand-in's single-field index on an array breaks find().
RoomCopyDoc = state_document(
    RoomCopy, "rooms", [IndexModel([("participant_ids", ASCENDING), ("created_at", ASCENDING)])]
)


class Item(Document):
    """A room item with the ``room.item_added`` event that announced it (``event``: the stored
    entry, published from here; ``published_at`` None until a publish was confirmed).

    The id of a message derives from its ``send_message``'s idempotency key, so storing it claims
    the key; the id of a change entry from its command's key likewise (its event is
    ``room.item_changed``). A command that was refused claims its key here too: a document in no
    room and with no event, holding the ``refusal`` that every later copy of that command gets
    (PROTOCOL.md: refusals are remembered), for the idempotency window: then the chore
    ``forget_refusals`` deletes it. A change command that changed nothing is remembered the same
    way, without a refusal, naming the item (``unchanged_in``, ``target_seq``).

    What changes made of an item is not written here but in its ``ItemState``; only a delete
    rewrites the documents holding the item's text (``erase``).
    """

    id: str  # type: ignore[assignment]  # string ids (Beanie declares an ObjectId)
    room_id: str
    seq: int
    kind: ItemKind
    sender_id: str | None
    content: str
    sent_at: datetime
    reply_to: Quote | None = None
    mentions: list[str] = []
    mentions_room: bool = False
    reactions: list[Reaction] = []
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    target_seq: int | None = None
    emoji: str | None = None
    attachments: list[Attachment] = []
    facts: Facts | None = None
    event: OutboxEntry | None
    published_at: float | None = None
    refusal: dict[str, Any] | None = None
    unchanged_in: str | None = None

    class Settings:
        name = "items"
        indexes = [
            IndexModel([("room_id", ASCENDING), ("seq", ASCENDING)], unique=True),
            IndexModel([("room_id", ASCENDING), ("sender_id", ASCENDING), ("seq", ASCENDING)]),
            IndexModel([("published_at", ASCENDING), ("sent_at", ASCENDING)]),
            IndexModel([("room_id", ASCENDING), ("target_seq", ASCENDING), ("seq", ASCENDING)]),
            IndexModel([("room_id", ASCENDING), ("reply_to.seq", ASCENDING)]),
        ]

    @field_validator("event", mode="before")
    @classmethod
    def _no_event(cls, value: object) -> object:
        return value or None  # refusals stored before events were typed have ``{}``

    def view(self) -> RoomItem:
        return RoomItem.model_validate(self.model_dump(include=set(RoomItem.model_fields)))


@dataclass(frozen=True)
class Published:
    """A stored item's event, to publish, and the item to mark published once it was."""

    item_id: str
    event: OutboxEntry


def _published(found: list[Item]) -> list[Published]:
    return [Published(item.id, item.event) for item in found if item.event is not None]


ReadMarkDoc = state_document(ReadMark, "marks", [IndexModel([("user_id", ASCENDING), ("room_id", ASCENDING)])])
ItemStateDoc = state_document(ItemState, "item_states", [IndexModel([("room_id", ASCENDING), ("seq", ASCENDING)])])
SHOWN = {"$in": list(SHOWN_KINDS)}
NOT_MESSAGES = {"$in": ["announcement", *CHANGE_KINDS]}


IN_ORDER = ("seq", SortDirection.ASCENDING)
LATEST_FIRST = ("seq", SortDirection.DESCENDING)
DUPLICATE_KEY = 11000  # MongoDB's error code for a unique index's violation


def mark_id(room_id: str, user_id: str) -> str:
    return f"{room_id}\x1f{user_id}"


# Copies ---------------------------------------------------------------------------------------


async def copy(room_id: str) -> tuple[StateDocument[RoomCopy] | None, RoomCopy | None]:
    doc = await RoomCopyDoc.get(room_id)
    return doc, doc.state() if doc else None


async def copies_of(user_id: str) -> list[RoomCopy]:
    return [doc.state() for doc in await RoomCopyDoc.find({"participant_ids": user_id}).to_list()]


async def copy_docs_of(user_id: str) -> list[StateDocument[RoomCopy]]:
    return await RoomCopyDoc.find({"participant_ids": user_id}).to_list()


async def save_copy(doc: StateDocument[RoomCopy] | None, copy: RoomCopy) -> None:
    """Write the copy where ``doc`` was read (None: new); ``ConcurrencyError`` if it changed meanwhile."""
    await write(doc.with_state(copy) if doc is not None else RoomCopyDoc.new(copy), [])


# Items ----------------------------------------------------------------------------------------


def item_id_of(command_key: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, command_key).hex


async def refuse(command_key: str, reply: dict[str, Any]) -> Item | None:
    """Remember a refused command under its item id, in a room of its own (no room's query sees it);
    what was stored under that id first, if something was (the item, or an earlier outcome)."""
    return await _remember(command_key, refusal=reply["error"])


async def unchanged(command_key: str, room_id: str, seq: int) -> Item | None:
    """Remember a change command that changed the item at ``seq`` in no way, as ``refuse`` does."""
    return await _remember(command_key, unchanged_in=room_id, target_seq=seq)


async def _remember(command_key: str, **outcome: Any) -> Item | None:
    item_id = item_id_of(command_key)
    remembered = Item(
        id=item_id,
        room_id=f"refused/{item_id}",
        seq=0,
        kind="message",
        sender_id=None,
        content="",
        sent_at=datetime.now(UTC),
        event=None,
        published_at=time.time(),
        **outcome,
    )
    try:
        await remembered.insert()
    except DuplicateKeyError:  # a copy of it got there first
        return await Item.get(item_id)
    return None


# Refusals are the items in rooms of their own, ``refused/<item id>``: a range of the (room_id, seq)
# index, so forgetting them needs no index of its own ("0" is the character after "/").
REFUSED = {"$gte": "refused/", "$lt": "refused0"}


async def forget_refusals(before: datetime) -> int:
    """Delete the refusals stored before ``before`` (their idempotency window is over); how many.
    Not a TTL index: the stand-in runs its TTL purge on every read of the collection, and items
    are read on the hot path."""
    found = await Item.get_pymongo_collection().delete_many({"room_id": REFUSED, "sent_at": {"$lt": before}})
    return found.deleted_count


async def insert_items(stored: list[tuple[RoomItem, OutboxEntry]]) -> int:
    """Store items with their events, in order, in one write (the driver's ordered insert); how many
    of them, from the first, were stored. Fewer than all: the next one's id or ``seq`` is taken, and
    nothing after it was tried."""
    documents = [
        Item(**item.model_dump(), event=entry).model_dump(by_alias=True, exclude={"revision_id"})
        for item, entry in stored
    ]
    try:
        await Item.get_pymongo_collection().insert_many(documents, ordered=True)
    except BulkWriteError as error:
        first = error.details["writeErrors"][0]
        if first["code"] != DUPLICATE_KEY:
            raise
        return int(first["index"])
    return len(documents)


async def item(item_id: str, since: datetime | None = None) -> Item | None:
    """The item (or remembered refusal) ``item_id``; with ``since``, only if stored since then."""
    found = await Item.get(item_id)
    if found is None or since is None:
        return found
    sent_at = found.sent_at if found.sent_at.tzinfo else found.sent_at.replace(tzinfo=UTC)
    return found if sent_at >= since else None


async def last_seq(room_id: str) -> int:
    """The ``seq`` of the room's latest entry, of any kind."""
    found = await Item.find(Item.room_id == room_id).sort(LATEST_FIRST).limit(1).to_list()
    return found[0].seq if found else 0


async def tail(room_id: str) -> tuple[int, Item | None]:
    """The room's last ``seq`` (of any entry) and its last message or announcement: one read unless
    change entries came after that item."""
    found = await Item.find(Item.room_id == room_id).sort(LATEST_FIRST).limit(1).to_list()
    if not found or found[0].kind in SHOWN_KINDS:
        return (found[0].seq, found[0]) if found else (0, None)
    shown = await Item.find({"room_id": room_id, "kind": SHOWN}).sort(LATEST_FIRST).limit(1).to_list()
    return found[0].seq, shown[0] if shown else None


async def last_shown_seq(room_id: str) -> int:
    """The ``seq`` of the room's last message or announcement, 0 if none."""
    return last.seq if (last := (await tail(room_id))[1]) else 0


async def own_latest(room_id: str, user_id: str) -> int:
    """The ``seq`` of the user's latest message in the room, 0 if none (their change entries aside)."""
    found = (
        await Item.find({"room_id": room_id, "sender_id": user_id, "kind": "message"})
        .sort(LATEST_FIRST)
        .limit(1)
        .to_list()
    )
    return found[0].seq if found else 0


async def stored_after(room_id: str, seq: int) -> list[Published]:
    """The room's items after ``seq`` with their events, in order."""
    return _published(await Item.find(Item.room_id == room_id, Item.seq > seq).sort(IN_ORDER).to_list())


async def unpublished_in(room_id: str, seq: int) -> list[Published]:
    """The stored events of the room's items up to ``seq`` not yet marked published, in order."""
    found = await Item.find({"room_id": room_id, "seq": {"$lte": seq}, "published_at": None}).sort(IN_ORDER).to_list()
    return _published(found)


async def items(room_id: str, page: Page, changes: bool = False) -> tuple[list[RoomItem], bool]:
    """One page of items in ascending ``seq``, as they now are, and whether more lie between the
    bounds; messages and announcements only, or with ``changes`` entries of every kind."""
    seq: dict[str, int] = {"$gt": page.after}
    if page.before is not None:
        seq["$lt"] = page.before
    kinds = {} if changes else {"kind": SHOWN}
    found = (
        await Item.find({"room_id": room_id, "seq": seq, **kinds})
        .sort(IN_ORDER if page.ascending else LATEST_FIRST)
        .limit(page.limit + 1)
        .to_list()
    )
    has_more = len(found) > page.limit
    chosen = found[: page.limit]
    if not page.ascending:
        chosen.reverse()
    return await shown(chosen), has_more


async def stored_since(room_id: str, seq: int, since: datetime | None, limit: int) -> list[Item]:
    """The room's messages and announcements after ``seq`` (stored at or after ``since``, if given),
    deleted ones aside: the latest ``limit`` of them, in ``seq`` order."""
    after = {"sent_at": {"$gte": since}} if since is not None else {}
    # ``$in: [None]``, not ``None``: the stand-in matches nothing when ``deleted_at: None`` comes with
    # an ``$in`` and a range in one filter.
    query = {"room_id": room_id, "seq": {"$gt": seq}, "kind": SHOWN, "deleted_at": {"$in": [None]}, **after}
    found = await Item.find(query).sort(LATEST_FIRST).limit(limit).to_list()
    return found[::-1]


async def others_between(room_id: str, seq: int, last: int) -> int:
    """How many entries after ``seq`` up to ``last`` are no message (announcements, change entries);
    their ids are read and counted (a count over the room's items is many times slower on the Mongo
    stand-in)."""
    found = Item.get_pymongo_collection().find(
        {"room_id": room_id, "seq": {"$gt": seq, "$lte": last}, "kind": NOT_MESSAGES}, {"_id": 1}
    )
    return len(await found.to_list())


async def mentions_after(room_id: str, user_id: str, seq: int) -> int:
    """How many messages from others after ``seq`` mention the user or the room (a deleted one has
    no mentions left)."""
    query = {
        "room_id": room_id,
        "seq": {"$gt": seq},
        "kind": "message",
        "sender_id": {"$ne": user_id},
        "$or": [{"mentions": user_id}, {"mentions_room": True}],
    }
    return len(await Item.get_pymongo_collection().find(query, {"_id": 1}).to_list())


async def mark_published(ids: list[str]) -> None:
    """One write for a batch of published items."""
    await Item.get_pymongo_collection().update_many({"_id": {"$in": ids}}, {"$set": {"published_at": time.time()}})


async def unpublished(before: datetime) -> list[Published]:
    """Items stored before ``before`` whose publish was never confirmed (a crash), with their events."""
    found = (
        await Item.find({"published_at": None, "sent_at": {"$lt": before}})
        .sort(("sent_at", SortDirection.ASCENDING))
        .to_list()
    )
    return _published(sorted(found, key=lambda i: (i.room_id, i.seq)))


# Read marks -----------------------------------------------------------------------------------


async def mark(room_id: str, user_id: str) -> tuple[StateDocument[ReadMark], ReadMark]:
    doc = await ReadMarkDoc.get(mark_id(room_id, user_id))
    if doc is None:
        doc = ReadMarkDoc.new(ReadMark(id=mark_id(room_id, user_id), room_id=room_id, user_id=user_id))
    return doc, doc.state()


async def marks_of(user_id: str) -> dict[str, ReadMark]:
    """The user's read marks (with their notification levels), by room."""
    return {doc.room_id: doc.state() for doc in await ReadMarkDoc.find({"user_id": user_id}).to_list()}


# What changes made of items -------------------------------------------------------------------


async def item_at(room_id: str, seq: int) -> Item | None:
    return await Item.find_one({"room_id": room_id, "seq": seq})


async def items_at(room_id: str, seqs: list[int]) -> list[RoomItem]:
    """The room's items at ``seqs``, as they now are, in ``seq`` order."""
    if not seqs:
        return []
    return await shown(await Item.find({"room_id": room_id, "seq": {"$in": seqs}}).sort(IN_ORDER).to_list())


async def changes_of(room_id: str, seq: int) -> list[RoomItem]:
    """The change entries of the item at ``seq``, in order."""
    found = await Item.find({"room_id": room_id, "target_seq": seq}).sort(IN_ORDER).to_list()
    return [entry.view() for entry in found]


async def replies_to(room_id: str, seq: int) -> list[RoomItem]:
    """The room's replies to the item at ``seq``, as they now are."""
    return await shown(await Item.find({"room_id": room_id, "reply_to.seq": seq}).sort(IN_ORDER).to_list())


async def state(room_id: str, seq: int) -> tuple[StateDocument[ItemState] | None, ItemState]:
    doc = await ItemStateDoc.get(domain.state_id(room_id, seq))
    return doc, doc.state() if doc else domain.new_state(room_id, seq)


async def save_state(doc: StateDocument[ItemState] | None, state: ItemState) -> None:
    """Write the state where ``doc`` was read (None: new); ``ConcurrencyError`` if it changed meanwhile."""
    await write(doc.with_state(state) if doc is not None else ItemStateDoc.new(state), [])


async def shown(found: list[Item]) -> list[RoomItem]:
    """``found`` as clients see them: with what changes made of each (one read for all)."""
    ids = [domain.state_id(item.room_id, item.seq) for item in found]
    states = {doc.id: doc.state() for doc in await ItemStateDoc.find({"_id": {"$in": ids}}).to_list()} if ids else {}
    return [domain.shown(item.view(), states.get(id)) for item, id in zip(found, ids, strict=True)]


async def erase(item: RoomItem) -> int:
    """Rewrite every stored entry that holds the deleted ``item``'s text (the item, its change
    entries, the replies quoting it and their change entries, each with its event) without it; how
    many were rewritten. Whole-document replaces: they behave the same on the stand-in."""
    assert item.deleted_at is not None
    replies = await Item.find({"room_id": item.room_id, "reply_to.seq": item.seq}).to_list()
    related = {"$in": [item.seq, *(reply.seq for reply in replies)]}
    found = await Item.find({"room_id": item.room_id, "$or": [{"seq": item.seq}, {"target_seq": related}]}).to_list()
    collection = Item.get_pymongo_collection()
    rewritten = 0
    for stored in {one.id: one for one in [*found, *replies]}.values():
        before = stored.model_dump(mode="json")
        after = domain.erase(before, item, format_time(item.deleted_at))
        if after != before:
            body = Item.model_validate(after).model_dump(by_alias=True, exclude={"revision_id"})
            await collection.replace_one({"_id": stored.id}, body)
            rewritten += 1
    return rewritten


DOCUMENTS = [RoomCopyDoc, Item, ReadMarkDoc, ItemStateDoc, PresenceDoc]
