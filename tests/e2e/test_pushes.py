"""Pushes through the whole stack: WebSocket clients on the gateway, the notifications worker sending
through firebase-admin to the fake FCM server (BOOCHAT_FCM_CREDENTIALS / BOOCHAT_FCM_ENDPOINT)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from support.client import Client
from support.fcm import FakeFcm, write_service_account
from support.ops_http import get, sample

pytestmark = pytest.mark.e2e

WAIT = 15.0


def dev_user(name: str) -> dict[str, str]:
    return {"id": f"{name.lower()}-{uuid.uuid4().hex[:8]}", "name": name}


@pytest.fixture
async def fcm() -> AsyncIterator[FakeFcm]:
    async with FakeFcm() as server:
        yield server


class Replica:
    """The presence replicas of notifications (whom to push) and messaging (whether an item goes to
    notifications at all), read to know when both have caught up (they send no signal)."""

    def __init__(self, stack: Any) -> None:
        self.client: AsyncMongoClient[Any] = AsyncMongoClient(stack.settings.mongo_url)
        self.dbs = [self.client[stack.settings.names.database(w)] for w in ("notifications", "messaging")]

    async def presence(self, user_id: str, online: bool) -> None:
        async with asyncio.timeout(WAIT):
            for db in self.dbs:
                while not await db["presence"].count_documents({"_id": user_id, "online": online}):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)


async def items_reaching_notifications(stack: Any) -> float:
    """How many room items the notifications worker has taken, from its metrics."""
    url = next(p for p in stack.processes if p.service == "notifications").metrics_url
    body = (await get(url))[1]
    return sample(body, "faststream_received_messages_total", handler=f"{stack.settings.names.events}.room.item_added")


async def test_offline_users_get_one_push_per_message_connected_users_and_senders_none(start_stack, fcm, tmp_path):
    account = write_service_account(tmp_path, fcm.url + "/token")
    stack = await start_stack(fcm_credentials=str(account), fcm_endpoint=fcm.endpoint)
    replica = Replica(stack)
    ann = await Client.connect(stack.ws_url, dev_user=dev_user("Ann"))
    bob = await Client.connect(stack.ws_url, dev_user=dev_user("Bob"))
    cid = await Client.connect(stack.ws_url, dev_user=dev_user("Cid"))
    tokens = {client.user["id"]: f"fcm-{uuid.uuid4().hex}" for client in (ann, bob, cid)}  # type: ignore[index]
    for client in (ann, bob, cid):
        await client.ok("register_device", {"token": tokens[client.user["id"]], "platform": "android"})  # type: ignore[index]
    ann_id, bob_id, cid_id = (client.user["id"] for client in (ann, bob, cid))  # type: ignore[index]
    for user_id in (ann_id, bob_id, cid_id):  # everyone is connected while the room is announced
        await replica.presence(user_id, online=True)
    room = (await ann.ok("create_room", {"name": "Den", "participant_ids": [bob_id, cid_id]}))["room"]
    await ann.ok("send_message", {"room_id": room["id"], "content": "all here"})
    # With everyone connected, messaging does not route the announcement or the message to notifications.
    # (Taken alone this could pass before a routed item was counted; the count of 2 at the end could not:
    # notifications takes its queue in order, so those two would come after anything routed here.)
    assert await items_reaching_notifications(stack) == 0
    await bob.close()  # Bob has no open connection from now on
    await replica.presence(bob_id, online=False)

    sent = [(await ann.ok("send_message", {"room_id": room["id"], "content": text}))["item"] for text in ("hi", "yo")]
    # Bob, offline, has a push of each message: the push reaction has been through both, so what it
    # did not send to the others it never will.
    seqs = {str(item["seq"]) for item in sent}
    await fcm.wait_for(lambda _: seqs <= {p.message["data"]["seq"] for p in fcm.sends_to(tokens[bob_id])})

    to_bob = [push for push in fcm.sends_to(tokens[bob_id]) if push.message["data"]["room_id"] == room["id"]]
    by_seq = {str(item["seq"]): item for item in sent}
    messages = [push for push in to_bob if push.message["data"]["seq"] in by_seq]
    assert sorted(push.message["data"]["seq"] for push in messages) == sorted(by_seq)  # exactly one each
    for push in messages:
        assert push.message["notification"] == {
            "title": "Den",
            "body": f"Ann: {by_seq[push.message['data']['seq']]['content']}",
        }
        assert push.message["android"]["collapse_key"] == room["id"]
    assert fcm.sends_to(tokens[ann_id]) == []  # the sender, and connected
    assert [p for p in fcm.sends_to(tokens[cid_id]) if p.message["data"].get("seq") in by_seq] == []  # connected
    assert all(push.headers["authorization"].startswith("Bearer fake-access-") for push in fcm.sends)
    assert await items_reaching_notifications(stack) == 2  # the two sent while Bob was offline
    await ann.close()
    await cid.close()
    await replica.client.close()


async def ann_and_bob_online(
    start_stack: Any, fcm: Any, tmp_path: Any
) -> tuple[Any, Replica, Client, Client, str, dict[str, Any]]:
    """A stack pushing to ``fcm``; Ann and Bob connected (and so online in notifications' replica),
    Bob's phone registered (its token), and a room of the two."""
    account = write_service_account(tmp_path, fcm.url + "/token")
    stack = await start_stack(fcm_credentials=str(account), fcm_endpoint=fcm.endpoint)
    replica = Replica(stack)
    ann = await Client.connect(stack.ws_url, dev_user=dev_user("Ann"))
    bob = await Client.connect(stack.ws_url, dev_user=dev_user("Bob"))
    ann_id, bob_id = ann.user["id"], bob.user["id"]  # type: ignore[index]
    token = f"fcm-{uuid.uuid4().hex}"
    await bob.ok("register_device", {"token": token, "platform": "android"})
    for user_id in (ann_id, bob_id):
        await replica.presence(user_id, online=True)
    room = (await ann.ok("create_room", {"name": "Den", "participant_ids": [bob_id]}))["room"]
    return stack, replica, ann, bob, token, room


async def test_a_message_sent_as_its_recipient_goes_offline_is_pushed_to_them_once(start_stack, fcm, tmp_path):
    """Bob closes his connection and Ann sends at once: messaging routes the message before its replica
    of presence knows Bob went offline, so the item never goes to notifications. Bob's going offline
    does: notifications asks messaging what he missed and pushes it. One push, whichever way it came."""
    stack, replica, ann, bob, token, room = await ann_and_bob_online(start_stack, fcm, tmp_path)
    bob_id = bob.user["id"]  # type: ignore[index]

    def pushed(seq: int) -> list[dict[str, Any]]:
        return [p.message for p in fcm.sends_to(token) if p.message["data"] == {"room_id": room["id"], "seq": str(seq)}]

    await bob.close()
    missed = (await ann.ok("send_message", {"room_id": room["id"], "content": "still there?"}))["item"]
    await fcm.wait_for(lambda _: bool(pushed(missed["seq"])))
    assert pushed(missed["seq"])[0]["notification"] == {"title": "Den", "body": "Ann: still there?"}

    # A later message takes the usual way. Once its push is in, notifications has taken every item
    # routed to it before (its queue is in order), and the missed one was already pushed: no second push.
    await replica.presence(bob_id, online=False)
    later = (await ann.ok("send_message", {"room_id": room["id"], "content": "later"}))["item"]
    await fcm.wait_for(lambda _: bool(pushed(later["seq"])))
    assert (len(pushed(missed["seq"])), len(pushed(later["seq"]))) == (1, 1)
    await ann.close()
    await replica.client.close()


# Notifications' queues that take user.presence_changed: push_missed_items, track_presence and its
# one process's presence mirror. Each counts one handled message per event in the metrics.
PRESENCE_QUEUES = 3


async def presence_events_handled(stack: Any, events: int) -> None:
    """Wait until notifications has handled ``events`` presence changes on each of its queues taking
    them (its metrics say so; nothing else does): its reaction to them has pushed what it would."""
    url = next(p for p in stack.processes if p.service == "notifications").metrics_url
    label = f"{stack.settings.names.events}.user.presence_changed"
    async with asyncio.timeout(WAIT):
        while True:
            body = (await get(url))[1]
            if sample(body, "faststream_received_processed_messages_total", handler=label) >= events * PRESENCE_QUEUES:
                return
            await asyncio.sleep(0.1)  # metrics send no signal: read again


async def test_items_received_live_are_not_pushed_when_the_member_goes_offline(start_stack, fcm, tmp_path):
    """Bob receives items live, then closes his connection (nothing read): none of them is pushed to
    his phone; the item Ann sends right after the close (messaging's replica of presence may not know
    yet) is pushed once."""
    stack, replica, ann, bob, token, room = await ann_and_bob_online(start_stack, fcm, tmp_path)
    live = [(await ann.ok("send_message", {"room_id": room["id"], "content": f"live {n}"}))["item"] for n in range(3)]
    for item in live:
        await bob.expect_event("room.item_added", lambda d, item=item: d["item"]["id"] == item["id"])

    await bob.close()
    after = (await ann.ok("send_message", {"room_id": room["id"], "content": "after"}))["item"]
    await fcm.wait_for(lambda _: any(p.message["data"].get("seq") == str(after["seq"]) for p in fcm.sends_to(token)))
    await presence_events_handled(stack, 3)  # Ann and Bob online, Bob offline
    pushed = [p.message["data"] for p in fcm.sends_to(token)]
    assert pushed == [{"room_id": room["id"], "seq": str(after["seq"])}]
    await ann.close()
    await replica.client.close()
