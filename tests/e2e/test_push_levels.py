"""Per-room notification levels, mentions and deletes through the whole stack: WebSocket clients on the
gateway, messaging's set_room_notifications, mentions and delete_message, and the notifications
worker pushing through firebase-admin to the fake FCM server (PROTOCOL.md, Push notifications)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support.client import Client
from support.fcm import FakeFcm, Recorded, write_service_account
from support.ops_http import get, sample

from e2e.test_pushes import Replica, dev_user, presence_events_handled

pytestmark = pytest.mark.e2e

WAIT = 15.0
# Notifications' queues taking room.notifications_set: the projection track_levels and its one
# process's levels mirror. Each counts one handled message per event in the metrics.
LEVEL_QUEUES = 2


@pytest.fixture
async def fcm() -> AsyncIterator[FakeFcm]:
    async with FakeFcm() as server:
        yield server


async def handled(stack: Any, event_type: str, count: float) -> None:
    """Wait until notifications' queues have handled ``count`` events of ``event_type`` in all (its
    metrics say so; nothing else does): what it decides from them is decided."""
    url = next(p for p in stack.processes if p.service == "notifications").metrics_url
    label = f"{stack.settings.names.events}.{event_type}"
    async with asyncio.timeout(WAIT):
        while True:
            if sample((await get(url))[1], "faststream_received_processed_messages_total", handler=label) >= count:
                return
            await asyncio.sleep(0.1)  # metrics send no signal: read again


async def connected(stack: Any, *names: str) -> tuple[list[Client], dict[str, str]]:
    """Clients of fresh users, each with a phone registered (tokens by user id), online in both replicas."""
    clients = [await Client.connect(stack.ws_url, dev_user=dev_user(name)) for name in names]
    tokens = {client.user["id"]: f"fcm-{uuid.uuid4().hex}" for client in clients}  # type: ignore[index]
    for client in clients:
        await client.ok("register_device", {"token": tokens[client.user["id"]], "platform": "android"})  # type: ignore[index]
    return clients, tokens


def in_room(pushes: list[Recorded], room_id: str) -> list[dict[str, Any]]:
    return [push.message for push in pushes if push.message["data"]["room_id"] == room_id]


async def test_a_muted_room_pushes_nothing_and_one_at_mentions_pushes_only_mentions(start_stack, fcm, tmp_path):
    """Bob muted the room, Cid asked for mentions only; both go offline. Of a plain message, one
    mentioning both and one mentioning the room, Bob gets nothing and Cid the two mentions, the one
    naming him saying so."""
    account = write_service_account(tmp_path, fcm.url + "/token")
    stack = await start_stack(fcm_credentials=str(account), fcm_endpoint=fcm.endpoint)
    replica = Replica(stack)
    (ann, bob, cid), tokens = await connected(stack, "Ann", "Bob", "Cid")
    ann_id, bob_id, cid_id = (client.user["id"] for client in (ann, bob, cid))  # type: ignore[index]
    for user_id in (ann_id, bob_id, cid_id):
        await replica.presence(user_id, online=True)
    room = (await ann.ok("create_room", {"name": "Den", "participant_ids": [bob_id, cid_id]}))["room"]
    await bob.ok("set_room_notifications", {"room_id": room["id"], "level": "none"})
    await cid.ok("set_room_notifications", {"room_id": room["id"], "level": "mentions"})
    await handled(stack, "room.notifications_set", 2 * LEVEL_QUEUES)
    await bob.close()
    await cid.close()
    await presence_events_handled(stack, 5)  # three online, two offline: pushes of what they missed are done
    for user_id in (bob_id, cid_id):
        await replica.presence(user_id, online=False)  # messaging's replica too: it routes items to notifications

    def send(content: str, **mentions: Any) -> Any:
        return ann.ok("send_message", {"room_id": room["id"], "content": content, **mentions})

    await send("plain")
    both = (await send("you two?", mentions=[bob_id, cid_id]))["item"]
    everyone = (await send("lunch!", mentions_room=True))["item"]
    await handled(stack, "room.item_added", 3)  # notifications has decided each of the three
    assert in_room(fcm.sends_to(tokens[bob_id]), room["id"]) == []
    to_cid = in_room(fcm.sends_to(tokens[cid_id]), room["id"])
    assert sorted((m["data"]["seq"], m["notification"]["body"]) for m in to_cid) == sorted(
        [(str(both["seq"]), "Ann mentioned you: you two?"), (str(everyone["seq"]), "Ann: lunch!")]
    )
    await ann.close()
    await replica.client.close()


async def test_a_message_deleted_before_its_push_went_out_is_not_pushed(start_stack, fcm, tmp_path):
    """FCM is unavailable to Bob's phone at first, so his push waits for a retry (0.5, 1 and 2 s of
    backoff); Ann deletes the message meanwhile: the push is withdrawn, never sent."""
    account = write_service_account(tmp_path, fcm.url + "/token")
    stack = await start_stack(fcm_credentials=str(account), fcm_endpoint=fcm.endpoint)
    replica = Replica(stack)
    (ann, bob), tokens = await connected(stack, "Ann", "Bob")
    ann_id, bob_id = ann.user["id"], bob.user["id"]  # type: ignore[index]
    for user_id in (ann_id, bob_id):
        await replica.presence(user_id, online=True)
    room = (await ann.ok("create_room", {"name": "Den", "participant_ids": [bob_id]}))["room"]
    await bob.close()
    await presence_events_handled(stack, 3)
    await replica.presence(bob_id, online=False)

    fcm.answer(tokens[bob_id], "unavailable", "unavailable", "unavailable")  # the fourth attempt would succeed
    oops = (await ann.ok("send_message", {"room_id": room["id"], "content": "oops"}))["item"]
    await fcm.wait_sends(tokens[bob_id], 1)
    await ann.ok("delete_message", {"room_id": room["id"], "seq": oops["seq"]})
    await handled(stack, "room.item_changed", 1)  # the delete is recorded
    await handled(stack, "room.item_added", 1)  # the push's retries are over
    assert [push.status for push in fcm.sends_to(tokens[bob_id])] == [503] * len(fcm.sends_to(tokens[bob_id]))
    later = (await ann.ok("send_message", {"room_id": room["id"], "content": "never mind"}))["item"]
    await fcm.wait_for(lambda _: any(p.status == 200 for p in fcm.sends_to(tokens[bob_id])))
    delivered = [p.message["data"]["seq"] for p in fcm.sends_to(tokens[bob_id]) if p.status == 200]
    assert delivered == [str(later["seq"])]
    await ann.close()
    await replica.client.close()
