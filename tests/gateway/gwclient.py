"""Client-side helpers of the gateway tests: send frames, wait for replies, events and closes."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from contracts.shapes import Room

WAIT = 5.0


async def send(ws: ClientConnection, type_: str, data: dict[str, Any] | None = None, id_: str = "") -> str:
    frame_id = id_ or uuid.uuid4().hex
    await ws.send(json.dumps({"type": type_, "id": frame_id, "data": data if data is not None else {}}))
    return frame_id


async def receive(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        return json.loads(await ws.recv())


async def reply_to(ws: ClientConnection, frame_id: str) -> dict[str, Any]:
    """The reply to ``frame_id``, skipping events and other replies."""
    while True:
        frame = await receive(ws)
        if frame["type"] in ("ok", "error") and frame["re"] == frame_id:
            return frame


async def event(ws: ClientConnection, name: str) -> dict[str, Any]:
    while True:
        frame = await receive(ws)
        if frame["type"] == "event" and frame["event"] == name:
            return frame


async def request(ws: ClientConnection, type_: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return await reply_to(ws, await send(ws, type_, data))


async def closed(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Wait for the server to close; frames still arriving are read and dropped."""
    async with asyncio.timeout(WAIT):
        await ws.wait_closed()
    return ws.close_code, ws.close_reason


async def sign_in(url: str, user_id: str, name: str = "", **kwargs: Any) -> ClientConnection:
    ws = await connect(url, **kwargs)
    answer = await request(ws, "authenticate", {"dev_user": {"id": user_id, "name": name or user_id}})
    assert answer["type"] == "ok", answer
    return ws


def room(room_id: str, *participants: str) -> dict[str, Any]:
    """A room as ``room.created`` and ``room.member_joined`` carry it to clients (``contracts.shapes.Room``)."""
    created_by = participants[0] if participants else "ann"
    made = Room(
        id=room_id,
        name=f"Room {room_id}",
        image_url=None,
        participant_ids=list(participants),
        created_by=created_by,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        last_seq=0,
    )
    return made.model_dump(mode="json")
