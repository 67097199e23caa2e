"""gateway.session against the real RabbitMQ: authentication, close codes, forwarding, limits."""

from __future__ import annotations

import asyncio
import json

import aio_pika
import pytest
from gwclient import closed, receive, reply_to, request, room, send, sign_in
from websockets.asyncio.client import connect

from boochat.rpc import failure
from boochat.settings import Settings
from contracts.envelope import Command, Delivery, Reply
from contracts.internal import SignIn
from contracts.routing import room_key, user_key
from gateway import auth

pytestmark = pytest.mark.integration


# Authentication -----------------------------------------------------------------------------


async def test_dev_login_signs_in_and_opens_the_connection(url: str, workers) -> None:
    """The reply carries user, token and expiry; users hears sign_in then connection_opened."""
    async with connect(url) as ws:
        frame_id = await send(ws, "authenticate", {"dev_user": {"id": "ann", "name": " Ann ", "email": "a@x.org"}})
        answer = await reply_to(ws, frame_id)
        assert answer["type"] == "ok"
        assert answer["data"]["user"] == {"id": "ann", "name": "Ann", "image_url": None}
        assert answer["data"]["expires_at"].endswith("Z")
        signed_in = await workers["users"].next("sign_in")
        assert signed_in.user_id == "ann"
        assert SignIn.model_validate(signed_in.data).email == "a@x.org"
        opened = await workers["users"].next("connection_opened")
        assert (await workers["rooms"].next("user_rooms")).user_id == "ann"
    closed_ = await workers["users"].next("connection_closed")
    assert closed_.data == opened.data | {"delivered": {}}  # it was sent no room item


async def test_a_closed_connection_says_the_latest_item_it_sent_per_room(url: str, workers, rooms, publish) -> None:
    """For pushes: what the client was sent live is not pushed to its phone once it is offline."""
    rooms.of["ann"] = ["r1", "r2"]
    ws = await sign_in(url, "ann")
    for room_id, seq in (("r1", 4), ("r1", 5), ("r2", 1)):
        item = {"id": f"{room_id}-{seq}", "room_id": room_id, "seq": seq}
        added = Delivery(id=f"i-{room_id}-{seq}", event="room.item_added", data={"item": item})
        await publish(room_key(room_id), added)
    for _ in range(3):
        assert (await receive(ws))["event"] == "room.item_added"
    await ws.close()
    assert (await workers["users"].next("connection_closed")).data["delivered"] == {"r1": 5, "r2": 1}


async def test_a_token_signs_in_and_comes_back(url: str, settings: Settings, workers) -> None:
    token, _ = auth.issue_token(settings, "bo", "Bo", picture="https://x.org/b.png")
    async with connect(url) as ws:
        answer = await request(ws, "authenticate", {"token": token})
        assert answer["data"]["token"] == token
        assert answer["data"]["user"] == {"id": "bo", "name": "Bo", "image_url": "https://x.org/b.png"}
        assert (await request(ws, "ping"))["type"] == "ok"


@pytest.mark.parametrize(
    ("first", "re"),
    [
        ({"type": "ping", "id": "p1", "data": {}}, "p1"),
        ({"type": "authenticate", "id": "a1", "data": {"token": "nope"}}, "a1"),
        ({"type": "authenticate", "id": "a1", "data": {"google_id_token": "eyJ"}}, "a1"),
        ({"type": "authenticate", "id": "a1", "data": {}}, "a1"),
        ({"type": "authenticate", "id": "a1", "data": {"token": "t", "dev_user": {"id": "u", "name": "U"}}}, "a1"),
        ({"type": "authenticate", "data": {"dev_user": {"id": "u", "name": "U"}}}, None),
        ("not json", None),
    ],
    ids=["not-authenticate", "bad-token", "google", "no-credential", "two-credentials", "no-id", "not-json"],
)
async def test_anything_but_a_valid_authenticate_closes_4401(url: str, workers, first, re) -> None:
    async with connect(url) as ws:
        await ws.send(first if isinstance(first, str) else json.dumps(first))
        answer = await receive(ws)
        assert answer["type"] == "error" and answer["re"] == re
        assert answer["error"]["code"] == "unauthenticated"
        assert (await closed(ws))[0] == 4401
    assert not [c for c in workers["users"].seen if c.type == "sign_in"]


@pytest.mark.parametrize("overrides", [{"dev_login": False}], indirect=False)
async def test_dev_login_disabled(url: str, workers) -> None:
    async with connect(url) as ws:
        answer = await request(ws, "authenticate", {"dev_user": {"id": "u", "name": "U"}})
        assert answer["error"]["code"] == "unauthenticated"
        assert (await closed(ws))[0] == 4401


@pytest.mark.parametrize("overrides", [{"auth_timeout_seconds": 0.2}])
async def test_no_authentication_in_time_closes_4401(url: str) -> None:
    async with connect(url) as ws:
        assert (await closed(ws))[0] == 4401


async def test_authenticate_twice_is_a_bad_request(url: str, workers) -> None:
    ws = await sign_in(url, "ann")
    answer = await request(ws, "authenticate", {"dev_user": {"id": "bo", "name": "Bo"}})
    assert answer["error"]["code"] == "bad_request"
    assert (await request(ws, "ping"))["type"] == "ok"
    await ws.close()


@pytest.mark.parametrize("overrides", [{"token_ttl_seconds": 1}])
async def test_expired_token_closes_4401(url: str, workers) -> None:
    ws = await sign_in(url, "ann")
    assert (await closed(ws))[0] == 4401


async def test_users_unreachable_is_unavailable(url: str) -> None:
    """No users worker: the sign-in cannot be kept, the client is told to come back later."""
    async with connect(url) as ws:
        answer = await request(ws, "authenticate", {"dev_user": {"id": "u", "name": "U"}})
        assert answer["error"]["code"] == "unavailable"
        assert (await closed(ws))[0] == 1013


async def test_the_rooms_lookup_is_asked_again(url: str, workers, rooms, publish, gateway) -> None:
    """The rooms worker failing the connect-time lookup twice: the connection still gets its rooms."""
    tries: list[Command] = []

    def user_rooms(command: Command) -> Reply:
        tries.append(command)
        return failure("unavailable", "not now") if len(tries) < 3 else Reply(ok={"room_ids": ["r1"]})

    rooms.answers["user_rooms"] = user_rooms
    ws = await sign_in(url, "ann")
    assert len(tries) == 3
    await publish(room_key("r1"), Delivery(id="d1", event="room.updated", data={"room": {"id": "r1"}}))
    assert (await receive(ws))["event"] == "room.updated"
    await ws.close()


@pytest.mark.parametrize("overrides", [{"request_timeout_seconds": 0.5}])
async def test_rooms_unreachable_is_unavailable_and_1013(url: str, workers, rooms, gateway) -> None:
    """The rooms worker never answering the lookup: never served, told to come back later, nothing left."""
    rooms.answers["user_rooms"] = lambda command: None
    async with connect(url) as ws:
        answer = await request(ws, "authenticate", {"dev_user": {"id": "ann", "name": "Ann"}})
        assert answer["error"]["code"] == "unavailable"
        assert (await closed(ws))[0] == 1013
    assert len([c for c in workers["rooms"].seen if c.type == "user_rooms"]) == 4
    assert not gateway.hub.registry.connected("ann")
    assert user_key("ann") not in gateway.hub.broker.bound
    assert not [c for c in workers["users"].seen if c.type in ("connection_opened", "connection_closed")]


# Close codes --------------------------------------------------------------------------------


async def test_the_tenth_malformed_frame_closes_4400(url: str, workers) -> None:
    """Nine bad frames get bad_request each; invalid data does not count; the tenth closes."""
    ws = await sign_in(url, "ann")
    bad = [
        "nope",
        "[]",
        '{"id": 5, "type": "ping", "data": {}}',
        '{"id": "a", "type": "x", "data": {}}',
        '{"id": "a", "type": "ping", "data": 1}',
        '{"id": "a", "type": "ping", "data": {}, "k": 1}',
    ]
    for index in range(9):
        await ws.send(bad[index % len(bad)])
        answer = await receive(ws)
        assert answer["error"]["code"] == "bad_request"
    for _ in range(3):
        answer = await request(ws, "get_room", {"room_id": 5})
        assert answer["error"]["details"] == {"data.room_id": "Input should be a valid string"}
    assert (await request(ws, "ping"))["type"] == "ok"
    await ws.send("still not json")
    answer = await receive(ws)
    assert answer == {"type": "error", "re": None, "error": {"code": "bad_request", "message": "a frame must be JSON"}}
    assert (await closed(ws))[0] == 4400


async def test_binary_message_closes_1003(url: str, workers) -> None:
    ws = await sign_in(url, "ann")
    await ws.send(b'{"type": "ping", "id": "a", "data": {}}')
    assert (await closed(ws))[0] == 1003


async def test_binary_first_message_closes_1003(url: str) -> None:
    async with connect(url) as ws:
        await ws.send(b"\x00")
        assert (await closed(ws))[0] == 1003


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_invalid_utf8_closes_1007(url: str, compression: str | None) -> None:
    """websockets checks UTF-8 itself, before authentication (transport codes win over 4401)."""
    async with connect(url, compression=compression) as ws:
        await ws.send(b'{"id": "\xff"}', text=True)
        assert (await closed(ws))[0] == 1007


@pytest.mark.parametrize("overrides", [{"max_frame_bytes": 1024}])
@pytest.mark.parametrize("compression", ["deflate", None])
async def test_too_big_closes_1009_after_decompression(url: str, workers, compression: str | None) -> None:
    ws = await sign_in(url, "ann", compression=compression)
    assert (await request(ws, "ping"))["type"] == "ok"
    await send(ws, "send_message", {"room_id": "r", "content": "a" * 2000})
    assert (await closed(ws))[0] == 1009


# Forwarding ---------------------------------------------------------------------------------


async def test_requests_go_to_their_owner_as_commands(url: str, workers) -> None:
    """Frame id, user and validated (trimmed) data travel; the reply comes back as ok."""
    ws = await sign_in(url, "ann")
    frame_id = await send(ws, "rename_room", {"room_id": "r1", "name": "  Climbing  "})
    answer = await reply_to(ws, frame_id)
    assert answer == {"type": "ok", "re": frame_id, "data": {"echo": {"room_id": "r1", "name": "Climbing"}}}
    command = await workers["rooms"].next("rename_room")
    assert command == Command(
        type="rename_room", id=frame_id, user_id="ann", data={"room_id": "r1", "name": "Climbing"}
    )
    await ws.close()


async def test_worker_errors_are_relayed(url: str, workers, rooms) -> None:
    rooms.answers["rename_room"] = lambda command: failure("forbidden", "not a member of this room")
    ws = await sign_in(url, "ann")
    answer = await request(ws, "rename_room", {"room_id": "r1", "name": "Den"})
    assert answer["error"] == {"code": "forbidden", "message": "not a member of this room"}
    await ws.close()


@pytest.mark.parametrize("overrides", [{"request_timeout_seconds": 0.5}])
async def test_no_answer_in_time_is_timeout(url: str, workers, rooms) -> None:
    rooms.answers["rename_room"] = lambda command: None
    ws = await sign_in(url, "ann")
    answer = await request(ws, "rename_room", {"room_id": "r1", "name": "Den"})
    assert answer["error"]["code"] == "timeout"
    await ws.close()


@pytest.mark.parametrize("overrides", [{"request_timeout_seconds": 0.5}])
async def test_a_late_reply_is_dropped(url: str, workers, rooms) -> None:
    """A reply after the timeout changes nothing; the next requests still get theirs."""
    late = asyncio.Event()

    async def rename_room(command: Command):
        await late.wait()
        return failure("not_found", "late")

    rooms.answers["rename_room"] = rename_room
    ws = await sign_in(url, "ann")
    assert (await request(ws, "rename_room", {"room_id": "r1", "name": "Den"}))["error"]["code"] == "timeout"
    late.set()
    rooms.answers.pop("rename_room")
    assert (await request(ws, "rename_room", {"room_id": "r1", "name": "Den"}))["type"] == "ok"
    await ws.close()


async def test_deliveries_before_a_reply_are_handled_before_it(url: str, workers, rooms, amqp, gateway) -> None:
    """A worker publishes a command's deliveries, then its reply: the new room is bound by then."""
    exchange = await amqp.get_exchange(gateway.settings.names.deliveries)

    async def create_room(command: Command):
        created = Delivery(id="d1", event="room.created", data={"room": room("r9", command.user_id)})
        await exchange.publish(aio_pika.Message(created.model_dump_json().encode()), routing_key=user_key("ann"))
        return Reply(ok=created.data)

    rooms.answers["create_room"] = create_room
    ws = await sign_in(url, "ann")
    answer = await request(ws, "create_room", {"name": "Nine", "participant_ids": []})
    assert answer["data"]["room"]["id"] == "r9"
    assert room_key("r9") in gateway.hub.broker.bound
    await ws.close()


async def test_no_worker_is_unavailable(url: str, workers) -> None:
    """Nobody consumes messaging's commands here."""
    ws = await sign_in(url, "ann")
    answer = await request(ws, "send_message", {"room_id": "r1", "content": "hi"})
    assert answer["error"]["code"] == "unavailable"
    await ws.close()


async def test_a_slow_request_does_not_hold_up_the_next(url: str, workers, rooms) -> None:
    release = asyncio.Event()

    async def rename_room(command: Command):
        if command.data["room_id"] == "slow":
            await release.wait()
        return failure("not_found", command.data["room_id"])

    rooms.answers["rename_room"] = rename_room
    ws = await sign_in(url, "ann")
    slow = await send(ws, "rename_room", {"room_id": "slow", "name": "Den"})
    fast = await send(ws, "rename_room", {"room_id": "fast", "name": "Den"})
    first = await receive(ws)
    assert first["re"] == fast
    release.set()
    second = await receive(ws)
    assert second["re"] == slow and second["error"]["message"] == "slow"
    await ws.close()


# Rate limit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{"rate_limit_per_minute": 3}])
async def test_rate_limit_per_user_then_4429(url: str, workers) -> None:
    """Beyond the limit: rate_limited, on every connection of the user; persisting closes 4429."""
    ws = await sign_in(url, "ann")
    other = await sign_in(url, "ann")
    stranger = await sign_in(url, "bo")
    for _ in range(3):
        assert (await request(ws, "ping"))["type"] == "ok"
    assert (await request(other, "ping"))["error"]["code"] == "rate_limited"
    assert (await request(stranger, "ping"))["type"] == "ok"
    for _ in range(3):
        assert (await request(ws, "get_room", {"room_id": "r"}))["error"]["code"] == "rate_limited"
    await send(ws, "ping")
    answer = await receive(ws)
    assert answer["error"]["code"] == "rate_limited"
    assert (await closed(ws))[0] == 4429
    await other.close()
    await stranger.close()
