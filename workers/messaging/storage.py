"""Messaging's collections: one timeline document per room; the items are its stored events."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from beanie import Document
from pymongo import ASCENDING, IndexModel

from contracts.shapes import ItemKind, RoomItem
from workers.messaging.domain import Page, Timeline
from workers.runtime.store import Aggregate

STATE_FIELDS = [f.name for f in fields(Timeline)]


class TimelineDoc(Aggregate):
    last_seq: int = 0
    recent_causes: list[str] = []

    class Settings:
        name = "timelines"

    def state(self) -> Timeline:
        return Timeline(**{name: getattr(self, name) for name in STATE_FIELDS})

    def update(self, state: Timeline) -> TimelineDoc:
        for name in STATE_FIELDS:
            setattr(self, name, getattr(state, name))
        return self


class Item(Document):
    """A room item as ``get_room_items`` reads it: a projection of ``room.item_added``."""

    id: str  # type: ignore[assignment]
    room_id: str
    seq: int
    kind: ItemKind
    sender_id: str | None
    content: str
    sent_at: datetime

    class Settings:
        name = "items"
        indexes = [IndexModel([("room_id", ASCENDING), ("seq", ASCENDING)], unique=True)]

    def view(self) -> RoomItem:
        return RoomItem.model_validate(self.model_dump(exclude={"revision_id"}))


async def put_item(item: RoomItem) -> None:
    """Idempotent: the same item again changes nothing."""
    await Item.get_pymongo_collection().replace_one(
        {"_id": item.id}, Item(**item.model_dump()).model_dump(by_alias=True, exclude={"revision_id"}), upsert=True
    )


async def timeline(room_id: str) -> TimelineDoc:
    """The room's timeline; a new one (written on first commit) if it has no item yet."""
    return await TimelineDoc.get(room_id) or TimelineDoc(id=room_id)


async def items(room_id: str, page: Page) -> tuple[list[RoomItem], bool]:
    """One page of items in ascending ``seq``, and whether more lie between the bounds."""
    seq: dict[str, int] = {"$gt": page.after}
    if page.before is not None:
        seq["$lt"] = page.before
    found = (
        await Item.find({"room_id": room_id, "seq": seq})
        .sort(("seq", 1 if page.ascending else -1))
        .limit(page.limit + 1)
        .to_list()
    )
    has_more = len(found) > page.limit
    chosen = found[: page.limit]
    if not page.ascending:
        chosen.reverse()
    return [item.view() for item in chosen], has_more


DOCUMENTS = [TimelineDoc, Item]
