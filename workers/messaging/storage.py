"""Messaging's collections: one timeline document per room; the items are its stored events."""

from __future__ import annotations

from dataclasses import fields

from contracts.shapes import RoomItem
from workers.messaging.domain import Page, Timeline
from workers.runtime.store import Aggregate, StoredEvent

STATE_FIELDS = [f.name for f in fields(Timeline)]
ITEM_ADDED = "room.item_added"


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


async def timeline(room_id: str) -> TimelineDoc:
    """The room's timeline; a new one (written on first commit) if it has no item yet."""
    return await TimelineDoc.get(room_id) or TimelineDoc(id=room_id)


async def items(room_id: str, page: Page) -> tuple[list[RoomItem], bool]:
    """One page of items in ascending ``seq``, and whether more lie between the bounds."""
    seq: dict[str, int] = {"$gt": page.after}
    if page.before is not None:
        seq["$lt"] = page.before
    found = (
        await StoredEvent.find({"aggregate_id": room_id, "type": ITEM_ADDED, "version": seq})
        .sort(("version", 1 if page.ascending else -1))
        .limit(page.limit + 1)
        .to_list()
    )
    has_more = len(found) > page.limit
    chosen = found[: page.limit]
    if not page.ascending:
        chosen.reverse()
    return [RoomItem.model_validate(event.payload["item"]) for event in chosen], has_more


DOCUMENTS = [TimelineDoc]
