"""A room as the rooms worker's events describe it, handed over to the messaging worker under test
(``support.handlers.harness``) as the rooms worker does before it replies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts.events import RoomCreated, RoomInfo
from support.handlers import event


def info(*user_ids: str, room_id: str = "r1") -> RoomInfo:
    """Room ``room_id`` of ``user_ids``, the first its creator."""
    return RoomInfo(
        id=room_id,
        name="Den",
        image_url=None,
        participant_ids=list(user_ids),
        created_by=user_ids[0],
        created_at=datetime.now(UTC),
    )


async def hand_over(messaging: Any, *events: Any) -> None:
    """Rooms' events, as rooms hands them over before replying."""
    await messaging.ok("copy_room_changes", "rooms", {"events": [e.model_dump(mode="json") for e in events]})


async def room_with(messaging: Any, *users: Any, room_id: str = "r1") -> Any:
    """Room ``room_id`` of ``users`` (the first its creator), created and handed over."""
    names = {u.id: u.name for u in users}
    created = event("room.created", RoomCreated(room=info(*names, room_id=room_id), names=names), room_id, 1)
    await hand_over(messaging, created)
    return created
