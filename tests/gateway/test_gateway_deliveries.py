"""Deliveries from the real RabbitMQ to connections: by user, by room, to everyone.

The gateway handles its queue in order, so a marker published after some deliveries arrives after
whatever those deliveries caused: a test waits for the marker instead of sleeping.
"""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest
from gwclient import event, receive, request, room, sign_in

from contracts.envelope import CarriedReply, Delivery, Reply, Rider
from contracts.routing import EVERYONE, REPLY_KEY, room_key, user_key

pytestmark = pytest.mark.integration


def delivery(name: str, **data) -> Delivery:
    return Delivery(id=uuid.uuid4().hex, event=name, data=data)


async def marker(publish, ws, user_id: str) -> list[dict]:
    """Everything the connection got before a marker sent to its user."""
    mark = delivery("room.read", room_id="marker", last_read_seq=0)
    await publish(user_key(user_id), mark)
    frames = []
    while (frame := await receive(ws))["data"] != mark.data:
        frames.append(frame)
    return frames


async def test_presence_goes_to_everyone(url: str, workers, publish) -> None:
    ann, bo = await sign_in(url, "ann"), await sign_in(url, "bo")
    await publish(EVERYONE, delivery("presence.changed", user_id="cy", online=True))
    for ws in (ann, bo):
        frame = await event(ws, "presence.changed")
        assert frame == {"type": "event", "event": "presence.changed", "data": {"user_id": "cy", "online": True}}


async def test_user_deliveries_reach_all_their_connections_only(url: str, workers, publish) -> None:
    ann1, ann2, bo = await sign_in(url, "ann"), await sign_in(url, "ann"), await sign_in(url, "bo")
    read = delivery("room.read", room_id="r1", last_read_seq=3)
    await publish(user_key("ann"), read)
    assert (await event(ann1, "room.read"))["data"] == read.data
    assert (await event(ann2, "room.read"))["data"] == read.data
    assert await marker(publish, bo, "bo") == []


async def test_a_burst_of_deliveries_is_acknowledged_in_bulk(url: str, workers, publish, monkeypatch) -> None:
    """Every delivery is acknowledged, and a burst by far fewer acks than messages (``multiple``)."""
    acks: list[bool] = []
    original = aio_pika.IncomingMessage.ack

    async def ack(self, multiple: bool = False) -> None:
        acks.append(multiple)
        await original(self, multiple=multiple)

    monkeypatch.setattr(aio_pika.IncomingMessage, "ack", ack)
    ann = await sign_in(url, "ann")
    acks.clear()
    reads = [delivery("room.read", room_id="r1", last_read_seq=n) for n in range(200)]
    await asyncio.gather(*(publish(user_key("ann"), read) for read in reads))
    assert [frame["data"] for frame in await marker(publish, ann, "ann")] == [read.data for read in reads]
    assert 1 <= len(acks) < len(reads) / 4 and all(acks), acks


async def test_room_deliveries_reach_the_rooms_users(url: str, workers, rooms, publish) -> None:
    rooms.of = {"ann": ["r1"], "bo": ["r2"]}
    ann, bo = await sign_in(url, "ann"), await sign_in(url, "bo")
    item = delivery("room.item_added", item={"room_id": "r1", "seq": 1})
    await publish(room_key("r1"), item)
    assert (await event(ann, "room.item_added"))["data"] == item.data
    assert await marker(publish, bo, "bo") == []


async def test_a_rider_reaches_its_users_connections_only(url: str, workers, rooms, publish) -> None:
    """A sender's room.read rides on their message's room delivery: every connection of the sender
    gets both, another member of the room the message only."""
    rooms.of = {"ann": ["r1"], "bo": ["r1"]}
    ann1, ann2, bo = await sign_in(url, "ann"), await sign_in(url, "ann"), await sign_in(url, "bo")
    read = Rider(
        id=uuid.uuid4().hex, key=user_key("ann"), event="room.read", data={"room_id": "r1", "last_read_seq": 1}
    )
    item = Delivery(id=uuid.uuid4().hex, event="room.item_added", data={"item": {"seq": 1}}, riders=[read])
    await publish(room_key("r1"), item)
    for ws in (ann1, ann2):
        got = await marker(publish, ws, "ann")
        assert [(frame["event"], frame["data"]) for frame in got] == [
            ("room.item_added", item.data),
            ("room.read", read.data),
        ]
    assert [frame["event"] for frame in await marker(publish, bo, "bo")] == ["room.item_added"]


async def test_a_reply_rides_on_the_delivery_its_command_caused(
    url: str, workers, rooms, amqp, settings, publish, gateway
) -> None:
    """A command offers the gateway's own key; a worker may answer inside the room delivery the
    command caused, routed to that key too (CC). The sender gets the reply even while this gateway
    is not bound to the room, and the room's members get the event as from any delivery."""
    rooms.of = {"bo": ["r1"]}
    ann = await sign_in(url, "ann")  # in no room this gateway knows
    exchange = await amqp.get_exchange(settings.names.deliveries)
    queue = await amqp.declare_queue(settings.names.command_queue("messaging"), exclusive=True, auto_delete=True)
    await queue.bind(settings.names.commands, routing_key="messaging")
    offered: list[object] = []

    async def answer(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        key = message.headers.get(REPLY_KEY)
        offered.append(key)
        assert isinstance(key, str) and message.correlation_id
        seq = len(offered)
        carried = CarriedReply(correlation_id=message.correlation_id, reply=Reply(ok={"item": {"seq": seq}}))
        item = Delivery(id=uuid.uuid4().hex, event="room.item_added", data={"item": {"seq": seq}}, reply=carried)
        body = aio_pika.Message(item.model_dump_json().encode(), headers={"CC": [key]})
        await exchange.publish(body, routing_key=room_key("r1"))  # and no reply of its own

    await queue.consume(answer, no_ack=True)
    assert room_key("r1") not in gateway.hub.broker.bound
    reply = await request(ann, "send_message", {"room_id": "r1", "content": "hi"})
    assert reply["type"] == "ok" and reply["data"] == {"item": {"seq": 1}}
    assert offered == [f"reply.{gateway.hub.gateway_id}"]

    bo = await sign_in(url, "bo")  # now the gateway is bound to the room too: one copy still
    reply = await request(ann, "send_message", {"room_id": "r1", "content": "again"})
    assert reply["type"] == "ok" and reply["data"] == {"item": {"seq": 2}}
    assert [frame["data"] for frame in await marker(publish, bo, "bo")] == [{"item": {"seq": 2}}]
    assert await marker(publish, ann, "ann") == []  # the delivery itself: for the room's members only


async def test_a_second_copy_is_dropped(url: str, workers, rooms, publish) -> None:
    """The room copy and the user copy of one delivery, or a redelivery, reach a client once."""
    rooms.of = {"ann": ["r1"]}
    ann = await sign_in(url, "ann")
    item = delivery("room.item_added", item={"room_id": "r1", "seq": 1})
    await publish(room_key("r1"), item)
    await publish(user_key("ann"), item)
    await publish(room_key("r1"), item)
    got = await marker(publish, ann, "ann")
    assert [frame["event"] for frame in got if frame["type"] == "event"] == ["room.item_added"]


async def test_a_joined_user_gets_the_room_from_then_on(url: str, workers, publish) -> None:
    ann, bo = await sign_in(url, "ann"), await sign_in(url, "bo")
    await publish(user_key("bo"), delivery("room.created", room=room("r1", "bo")))
    joined = delivery("room.member_joined", room_id="r2", user_id="ann", invited_by="bo", room=room("r2"))
    await publish(user_key("ann"), joined)
    assert [f["event"] for f in await marker(publish, bo, "bo")] == ["room.created"]
    assert [f["event"] for f in await marker(publish, ann, "ann")] == ["room.member_joined"]
    await publish(room_key("r1"), delivery("room.item_added", item={"room_id": "r1"}))
    await publish(room_key("r2"), delivery("room.item_added", item={"room_id": "r2"}))
    assert [f["data"]["item"] for f in await marker(publish, bo, "bo")] == [{"room_id": "r1"}]
    assert [f["data"]["item"] for f in await marker(publish, ann, "ann")] == [{"room_id": "r2"}]


async def test_the_leaver_gets_member_left_and_nothing_after(url: str, workers, rooms, publish) -> None:
    rooms.of = {"ann": ["r1"], "bo": ["r1"]}
    ann, bo = await sign_in(url, "ann"), await sign_in(url, "bo")
    left = delivery("room.member_left", room_id="r1", user_id="bo")
    await publish(room_key("r1"), left)
    await publish(user_key("bo"), left)  # the leaver's own copy: a duplicate by now
    announcement = delivery("room.item_added", item={"room_id": "r1", "content": "Bo left"})
    await publish(room_key("r1"), announcement)
    assert [f["event"] for f in await marker(publish, bo, "bo")] == ["room.member_left"]
    assert [f["event"] for f in await marker(publish, ann, "ann")] == ["room.member_left", "room.item_added"]


async def test_a_room_nobody_here_is_in_is_unbound(url: str, workers, rooms, publish, gateway) -> None:
    rooms.of = {"ann": ["r1"]}
    ann = await sign_in(url, "ann")
    assert gateway.hub.registry.wanted(room_key("r1"))
    await publish(user_key("ann"), delivery("room.member_left", room_id="r1", user_id="ann"))
    assert [f["event"] for f in await marker(publish, ann, "ann")] == ["room.member_left"]
    assert not gateway.hub.registry.wanted(room_key("r1"))
    assert room_key("r1") not in gateway.hub.broker.bound
