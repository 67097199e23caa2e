"""The notifications worker in this process against the real RabbitMQ and the Mongo stand-in: commands
over request/reply, events on the namespace's exchange as the other workers publish them, and the
presence mirror each worker process keeps in memory."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aio_pika
import pytest
from support.broker import listed
from support.fcm import FakeFcm, FakeSender, item_added, presence, write_service_account

from boochat.rpc import RpcClient
from contracts.envelope import AnyEvent, Command
from contracts.routing import ITEMS_FOR_OFFLINE
from workers.notifications.app import create_app
from workers.notifications.domain import Target
from workers.notifications.sender import Sender, create_sender
from workers.notifications.storage import DeviceDoc
from workers.presence import PRESENCE, Presence, PresenceDoc
from workers.runtime.context import Runtime

pytestmark = pytest.mark.integration

WAIT = 10.0


class Bus:
    """The test's side of the broker: commands to the worker, events as other workers publish them."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, rpc: RpcClient, settings, runtime: Runtime) -> None:
        self.channel, self.rpc, self.settings = channel, rpc, settings
        self.runtime = runtime  # the worker's, to see what its process holds in memory

    async def command(self, user_id: str, type: str, data: dict) -> dict:
        command = Command(type=type, id=uuid.uuid4().hex, user_id=user_id, data=data)
        reply = await self.rpc.call("notifications", command)
        assert reply.error is None, reply.error
        return reply.ok or {}

    async def publish(self, event: AnyEvent, also: tuple[str, ...] = ()) -> None:
        """``event`` under its type, and under the keys ``also`` as the outbox sends them (``CC``)."""
        exchange = await self.channel.get_exchange(self.settings.names.events, ensure=False)
        body = json.loads(event.model_dump_json())
        message = aio_pika.Message(
            json.dumps(body).encode(),
            content_type="application/json",
            message_id=event.event_id,
            headers={"CC": list(also)} if also else None,
        )
        await exchange.publish(message, routing_key=event.type)

    async def publish_item(self, event: AnyEvent) -> None:
        """A new item as messaging sends it when a recipient is offline."""
        await self.publish(event, also=(ITEMS_FOR_OFFLINE,))


@asynccontextmanager
async def running(settings, sender: Sender) -> AsyncIterator[Bus]:
    app = create_app(settings, sender)
    await app.start()
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        rpc = RpcClient(channel, settings.names, WAIT)
        await rpc.start()
        yield Bus(channel, rpc, settings, app.context.get("runtime"))
    finally:
        await connection.close()
        await app.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> None:
    """Wait until ``check()`` holds: the worker's own state has no signal to wait on, so poll it."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - the stand-in has no change signal to wait on
            await asyncio.sleep(0.05)


def user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def test_offline_participants_get_pushes_online_ones_and_the_sender_none(settings):
    sender = FakeSender()
    ann, bob, cid = user(), user(), user()
    async with running(settings, sender) as bus:
        for who in (ann, bob, cid):
            await bus.command(who, "register_device", {"token": f"tok-{who}", "platform": "android"})
        await bus.publish(presence(cid, True, 2))
        await eventually(lambda: PresenceDoc.find_one({"_id": cid, "online": True}).exists())
        # Messaging saw everyone online: routed under its type only, the item never reaches this worker.
        await bus.publish(item_added("r1", [ann, bob, cid], sender_id=ann, content="unseen", seq=1))
        await bus.publish_item(item_added("r1", [ann, bob, cid], sender_id=ann, content="hello", seq=2))
        await bus.publish_item(item_added("r1", [ann, bob, cid], sender_id=ann, content="again", seq=3))
        await sender.wait_for(lambda: len(sender.to(f"tok-{bob}")) == 2)
    assert sorted(p.body for p in sender.to(f"tok-{bob}")) == ["Ann: again", "Ann: hello"]
    assert sender.to(f"tok-{ann}") == sender.to(f"tok-{cid}") == []
    assert sender.closed


async def test_through_firebase_admin_a_token_reported_unregistered_is_deleted(settings, tmp_path):
    async with FakeFcm() as fcm:
        account = write_service_account(tmp_path, fcm.url + "/token")
        sender = create_sender(str(account), fcm.endpoint)
        ann, bob = user(), user()
        async with running(settings, sender) as bus:
            for value in ("tok-live", "tok-dead"):
                await bus.command(bob, "register_device", {"token": value, "platform": "android"})
            fcm.answer("tok-dead", "unregistered")
            await bus.publish_item(item_added("r1", [ann, bob], sender_id=ann, content="hi", seq=1))
            await fcm.wait_sends("tok-live", 1)
            await fcm.wait_sends("tok-dead", 1)
            await eventually(lambda: _gone("tok-dead"))
            assert await DeviceDoc.get(Target("token", "tok-live").id) is not None
        [push] = fcm.sends_to("tok-live")
        assert push.message["notification"] == {"title": "Den", "body": "Ann: hi"}
        assert push.message["data"] == {"room_id": "r1", "seq": "1"}


async def _gone(value: str) -> bool:
    return await DeviceDoc.get(Target("token", value).id) is None


def without_reload(settings):
    """Settings whose workers never reload their mirrors during a test: what a mirror holds came
    from its first load or from its queue."""
    return settings.model_copy(update={"mirror_reload_seconds": 3600.0})


async def test_presence_events_reach_the_running_workers_mirror(settings):
    """Through the process's own queue (no reload): bob offline gets a push; online (a newer version)
    he gets none, while cid, offline, gets every item. The queue goes with the process."""
    sender = FakeSender()
    ann, bob, cid = user(), user(), user()
    prefix = settings.names.mirror_queue("notifications", "presence", "")
    async with running(without_reload(settings), sender) as bus:
        for who in (bob, cid):
            await bus.command(who, "register_device", {"token": f"tok-{who}", "platform": "android"})
        assert len(await listed("queues", prefix)) == 1
        await bus.publish_item(item_added("r1", [ann, bob, cid], sender_id=ann, seq=1))
        await sender.wait_for(lambda: len(sender.to(f"tok-{bob}")) == 1)
        await bus.publish(presence(bob, True, 2))
        await eventually(lambda: _holds(bus.runtime, Presence(bob, True, 2)))
        await bus.publish_item(item_added("r1", [ann, bob, cid], sender_id=ann, seq=2))
        await sender.wait_for(lambda: len(sender.to(f"tok-{cid}")) == 2)
    assert [p.data["seq"] for p in sender.to(f"tok-{bob}")] == ["1"]
    assert await listed("queues", prefix) == []


async def test_a_worker_started_later_loads_the_stored_presence(settings):
    """Presence stored by one worker process (its projection) is in the mirror of one started after
    it stopped, before that one's queue existed: no push to bob, who is online."""
    sender = FakeSender()
    ann, bob, cid = user(), user(), user()
    async with running(without_reload(settings), sender) as bus:
        for who in (bob, cid):
            await bus.command(who, "register_device", {"token": f"tok-{who}", "platform": "android"})
        await bus.publish(presence(bob, True, 2))
        await eventually(lambda: PresenceDoc.find_one({"_id": bob, "online": True}).exists())
    async with running(without_reload(settings), sender) as bus:
        assert PRESENCE.state(bus.runtime)[bob] == Presence(bob, True, 2)
        await bus.publish_item(item_added("r1", [ann, bob, cid], sender_id=ann, seq=1))
        await sender.wait_for(lambda: len(sender.to(f"tok-{cid}")) == 1)
    assert sender.to(f"tok-{bob}") == []


async def _holds(runtime: Runtime, presence: Presence) -> bool:
    return PRESENCE.state(runtime).get(presence.user_id) == presence
