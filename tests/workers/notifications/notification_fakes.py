"""An in-memory push port and builders of the events the notifications worker consumes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from contracts.envelope import AnyEvent
from contracts.events import ItemAppended, PresenceMoved
from contracts.shapes import RoomItem
from workers.notifications.domain import Outcome, Push, Target

WAIT = 10.0


class FakeSender:
    """The push port in memory: records every send; ``answer(value, *outcomes)`` scripts a target."""

    def __init__(self) -> None:
        self.sent: list[tuple[Push, Target]] = []
        self.closed = False
        self._scripts: dict[str, list[Outcome | Exception]] = {}
        self._arrived = asyncio.Condition()

    def answer(self, value: str, *outcomes: Outcome | Exception) -> None:
        self._scripts.setdefault(value, []).extend(outcomes)

    def to(self, value: str) -> list[Push]:
        return [push for push, target in self.sent if target.value == value]

    async def send(self, push: Push, target: Target) -> Outcome:
        async with self._arrived:
            self.sent.append((push, target))
            self._arrived.notify_all()
        script = self._scripts.get(target.value)
        answer = script.pop(0) if script else Outcome.SENT
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(predicate)

    async def close(self) -> None:
        self.closed = True


def event(type: str, payload: Any, version: int = 1, aggregate_id: str = "a1", event_id: str | None = None) -> AnyEvent:
    return AnyEvent(
        event_id=event_id or uuid.uuid4().hex,
        type=type,
        aggregate_id=aggregate_id,
        version=version,
        occurred_at=datetime.now(UTC),
        actor_id="someone",
        correlation_id="c1",
        causation_id="c0",
        payload=payload.model_dump(mode="json"),
    )


def presence(user_id: str, online: bool, version: int) -> AnyEvent:
    return event("user.presence_changed", PresenceMoved(user_id=user_id, online=online), version, user_id)


def item_added(
    room_id: str,
    participants: list[str],
    sender_id: str | None,
    content: str = "hi",
    seq: int = 1,
    room_name: str = "Den",
    sender_name: str | None = "Ann",
) -> AnyEvent:
    item = RoomItem(
        id=uuid.uuid4().hex,
        room_id=room_id,
        seq=seq,
        kind="message" if sender_id else "announcement",
        sender_id=sender_id,
        content=content,
        sent_at=datetime.now(UTC),
    )
    payload = ItemAppended(item=item, room_name=room_name, sender_name=sender_name, participant_ids=participants)
    return event("room.item_added", payload, seq, room_id)
