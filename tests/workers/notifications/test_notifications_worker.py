"""The notifications worker in this process against the real RabbitMQ and the Mongo stand-in: commands
over request/reply, events on the namespace's exchange as the other workers publish them, and the
presence mirror each worker process keeps in memory."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aio_pika
import pytest
from pymongo import AsyncMongoClient
from support.broker import listed
from support.fcm import FakeFcm, FakeSender, item_added, presence, write_service_account
from test_notifications_handlers import changed, level_set, mentioning

from boochat import topology
from boochat.progress import Console
from boochat.rpc import RpcClient
from contracts.envelope import AnyEvent, Command
from contracts.routing import ITEMS_FOR_OFFLINE
from workers.notifications.app import WORKER, create_app
from workers.notifications.domain import Level, Target
from workers.notifications.handlers import LEVELS
from workers.notifications.sender import Sender, create_sender
from workers.notifications.storage import DeletionDoc, DeviceDoc
from workers.presence import PRESENCE, Presence, PresenceDoc
from workers.runtime import replay
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


async def test_levels_and_deletes_decide_the_running_workers_pushes(settings):
    """Through the worker's queues: Bob muted the room, Cid asked for mentions. A deleted item (its
    delete came first) pushes nobody, a plain one nobody, one mentioning Cid pushes Cid. One delivery
    at a time, so the items are taken in order: once Cid has the last push, the others were decided."""
    sender = FakeSender()
    ann, bob, cid = user(), user(), user()
    one_at_a_time = without_reload(settings).model_copy(update={"prefetch": 1})
    async with running(one_at_a_time, sender) as bus:
        for who in (bob, cid):
            await bus.command(who, "register_device", {"token": f"tok-{who}", "platform": "android"})
        await bus.publish(level_set("r1", bob, "none", 1))
        await bus.publish(level_set("r1", cid, "mentions", 1))
        await eventually(lambda: _levels(bus.runtime, Level("r1", bob, "none", 1), Level("r1", cid, "mentions", 1)))
        room = [ann, bob, cid]
        gone = mentioning(item_added("r1", room, sender_id=ann, content="oops", seq=1), bob, cid)
        await bus.publish(changed(gone, "delete"))
        await eventually(lambda: DeletionDoc.find_one({"_id": gone.payload["item"]["id"]}).exists())
        await bus.publish_item(gone)
        await bus.publish_item(item_added("r1", room, sender_id=ann, content="plain", seq=3))
        await bus.publish_item(mentioning(item_added("r1", room, sender_id=ann, content="cid?", seq=4), cid))
        await sender.wait_for(lambda: len(sender.to(f"tok-{cid}")) == 1)
    assert [p.body for p in sender.to(f"tok-{cid}")] == ["Ann mentioned you: cid?"]
    assert sender.to(f"tok-{bob}") == []


async def _levels(runtime: Runtime, *levels: Level) -> bool:
    return all(LEVELS.state(runtime).get(level.key) == level for level in levels)


async def test_replay_rebuilds_the_levels_and_the_deletions(settings):
    """From the event log alone: each user's newest level per room (events in any order), and the
    items deleted; edits and reactions record nothing."""
    bob, cid = user(), user()
    gone, kept = (item_added("r1", [bob, cid], sender_id=bob, seq=seq) for seq in (1, 3))
    logged = [
        level_set("r1", bob, "none", 2),
        level_set("r1", bob, "mentions", 1),  # older, logged later
        level_set("r1", cid, "mentions", 1),
        changed(gone, "delete"),
        changed(kept, "edit"),
    ]
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        await topology.declare_exchanges(channel, settings)
        exchange = await channel.get_exchange(settings.names.events)
        for event in logged:
            body = event.model_dump_json().encode()
            await exchange.publish(aio_pika.Message(body, message_id=event.event_id), routing_key=event.type)
    plan = await replay.replay(WORKER, settings, console=Console(io.StringIO()))
    assert plan.applied == len(logged)
    client: AsyncMongoClient = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    try:
        database = client[settings.names.database("notifications")]
        levels = {(d["user_id"], d["level"], d["version"]) for d in await database["levels"].find({}).to_list()}
        deletions = [d["_id"] for d in await database["deletions"].find({}).to_list()]
    finally:
        await client.close()
    assert levels == {(bob, "none", 2), (cid, "mentions", 1)}
    assert deletions == [gone.payload["item"]["id"]]
