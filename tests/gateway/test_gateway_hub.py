"""gateway.hub: routing what the broker yields and keeping the bindings in line with the registry
(with a fake broker), and limits that hold over several gateways (against the real RabbitMQ)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import aio_pika
import pytest
from gwclient import WAIT, closed, event, request, room, sign_in
from support.proxy import Proxy
from support.stack import free_ports
from websockets.asyncio.client import connect

from boochat.rpc import failure
from boochat.settings import Settings
from contracts.envelope import Command, Delivery, Reply
from contracts.routing import GATEWAYS, room_key, user_key
from gateway import hub as hub_module
from gateway.app import Gateway
from gateway.broker import Arrival, RateReport, Routed
from gateway.hub import Hub, Seen

LIMIT = 10


class FakeBroker:
    """The broker as the hub sees it, without RabbitMQ: arrivals come from ``send``, each binding
    change lets other tasks run a few times first (so changes race), and the users and rooms workers
    answer at once."""

    ready = True

    def __init__(self) -> None:
        self.rooms: dict[str, list[str]] = {}
        self.bound: set[str] = set()
        self.resumed: list[frozenset[str]] = []  # what was bound each time the hub asked for more
        self.idle = asyncio.Event()  # the hub has asked for more after the last arrival sent
        self.reconnect = asyncio.Event()  # set: the connection was lost and made again
        self.calls: list[Command] = []
        self.called = asyncio.Condition()
        self.failing: Counter[str] = Counter()  # request type -> how many of the next ones fail
        self._incoming: asyncio.Queue[Arrival] = asyncio.Queue()
        self._sent = 0
        self._delays = random.Random(5)

    def send(self, arrival: Arrival) -> None:
        self._sent += 1
        self.idle.clear()
        self._incoming.put_nowait(arrival)

    async def connect(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def call(self, worker: str, command: Command) -> Reply:
        await asyncio.sleep(0)
        async with self.called:
            self.calls.append(command)
            self.called.notify_all()
        if self.failing[command.type]:
            self.failing[command.type] -= 1
            return failure("unavailable", "users is not reachable")
        if command.type == "user_rooms":
            return Reply(ok={"room_ids": self.rooms.get(command.user_id, [])})
        return Reply(ok={})

    async def bind(self, wanted: Mapping[str, bool]) -> None:
        for key, want in wanted.items():
            for _ in range(self._delays.randrange(1, 6)):
                await asyncio.sleep(0)
            if want:
                self.bound.add(key)
            else:
                self.bound.discard(key)

    async def reconnected(self) -> None:
        await self.reconnect.wait()
        self.reconnect.clear()

    async def wait_calls(self, type_: str, count: int) -> list[Command]:
        """Once ``count`` requests of ``type_`` have been made, all of them."""
        async with asyncio.timeout(WAIT), self.called:
            await self.called.wait_for(lambda: len(self.of(type_)) >= count)
        return self.of(type_)

    def of(self, type_: str) -> list[Command]:
        return [command for command in self.calls if command.type == type_]

    async def arrivals(self) -> AsyncGenerator[Arrival, None]:
        while True:
            yield await self._incoming.get()
            self.resumed.append(frozenset(self.bound))
            if len(self.resumed) == self._sent:
                self.idle.set()


class FakeConnection:
    def __init__(self, name: str, fails_on: str = "") -> None:
        self.id = name
        self.got: list[str] = []
        self.delivered: dict[str, int] = {}
        self.closed: tuple[int, str] | None = None
        self.closing = asyncio.Event()
        self._fails_on = fails_on

    def deliver(self, delivery_id: str, text: str, seen: Seen | None = None) -> None:
        if delivery_id == self._fails_on:
            raise RuntimeError("a bug in delivering")
        self.got.append(delivery_id)
        if seen is not None:
            self.delivered[seen.room_id] = seen.seq

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.closing.set()


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    hub = Hub(Settings(jwt_secret="x" * 32, rate_limit_per_minute=LIMIT))
    hub.broker = FakeBroker()  # type: ignore[assignment]
    await hub.connect()
    yield hub
    await hub.close()


def broker_of(hub: Hub) -> FakeBroker:
    assert isinstance(hub.broker, FakeBroker)
    return hub.broker


def joined(room_id: str, user_id: str) -> Delivery:
    data = {"room_id": room_id, "user_id": user_id, "invited_by": "zed", "room": room(room_id, "zed", user_id)}
    return Delivery(id=f"join-{room_id}-{user_id}", event="room.member_joined", data=data)


def left(room_id: str, user_id: str) -> Delivery:
    return Delivery(
        id=f"leave-{room_id}-{user_id}", event="room.member_left", data={"room_id": room_id, "user_id": user_id}
    )


async def test_the_next_arrival_is_taken_once_the_last_is_routed_and_bound(hub: Hub) -> None:
    """A delivery reaches the connections the registry names, and the room it joined is bound
    before the broker is asked for the next message (a reply after it finds the room bound)."""
    broker, ann = broker_of(hub), FakeConnection("ann-1")
    assert await hub.register(ann, "ann") is None
    broker.send(Routed(user_key("ann"), joined("r1", "ann")))
    broker.send(Routed(room_key("r1"), Delivery(id="item-1", event="room.item_added", data={"item": {}})))
    async with asyncio.timeout(WAIT):
        await broker.idle.wait()
    assert ann.got == ["join-r1-ann", "item-1"]
    assert room_key("r1") in broker.resumed[0]


async def test_a_failed_delivery_is_logged_and_the_next_one_routed(hub: Hub) -> None:
    broker, ann = broker_of(hub), FakeConnection("ann-1", fails_on="bad")
    assert await hub.register(ann, "ann") is None
    broker.send(Routed(user_key("ann"), Delivery(id="bad", event="room.read", data={})))
    broker.send(Routed(user_key("ann"), Delivery(id="good", event="room.read", data={})))
    async with asyncio.timeout(WAIT):
        await broker.idle.wait()
    assert ann.got == ["good"]


async def test_another_gateways_report_counts_against_the_limit(hub: Hub) -> None:
    broker = broker_of(hub)
    broker.send(RateReport(gateway_id="other", requests={"ann": LIMIT}))
    async with asyncio.timeout(WAIT):
        await broker.idle.wait()
    assert not hub.limiter.allow("ann", time.monotonic())
    assert hub.limiter.allow("bo", time.monotonic())


async def test_racing_joins_and_leaves_settle_on_the_bindings_the_registry_wants(hub: Hub) -> None:
    """Connections opening and closing while joins and leaves arrive, in shuffled bursts: once a
    burst is over, exactly the keys the registry wants are bound."""
    broker, rng = broker_of(hub), random.Random(20)
    users, rooms = ["ann", "bo", "cy"], ["r1", "r2", "r3"]
    keys = [user_key(user) for user in users] + [room_key(room_id) for room_id in rooms]
    connections = {user: FakeConnection(f"{user}-1") for user in users}
    for _ in range(100):
        broker.rooms = {user: rng.sample(rooms, 2) for user in users}
        changes: list[asyncio.Task[object]] = []
        for _ in range(8):
            user, room_id, dice = rng.choice(users), rng.choice(rooms), rng.random()
            key = rng.choice([user_key(user), room_key(room_id)])
            if dice < 0.25:
                changes.append(asyncio.create_task(hub.register(connections[user], user)))
            elif dice < 0.5:
                changes.append(asyncio.create_task(hub.unregister(connections[user], user)))
            else:
                broker.send(Routed(key, joined(room_id, user) if dice < 0.75 else left(room_id, user)))
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*changes)
            await broker.idle.wait()
        assert broker.bound == {key for key in keys if hub.registry.wanted(key)}


def item_added(room_id: str, seq: int) -> Delivery:
    item = {"id": f"{room_id}-{seq}", "room_id": room_id, "seq": seq}
    return Delivery(id=f"item-{room_id}-{seq}", event="room.item_added", data={"item": item})


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "PRESENCE_RETRY_SECONDS", (0.01, 0.02))


async def test_a_close_the_users_worker_did_not_take_is_told_again_until_it_is(hub: Hub, quick_retries) -> None:
    """Presence converges after a fault: connection_closed goes again, in the background, until taken."""
    broker, ann = broker_of(hub), FakeConnection("ann-1")
    assert await hub.register(ann, "ann") is None
    broker.failing["connection_closed"] = 3
    await hub.unregister(ann, "ann")
    closes = await broker.wait_calls("connection_closed", 4)
    assert {command.data["connection_id"] for command in closes} == {"ann-1"}
    assert not broker.failing["connection_closed"]


async def test_an_open_not_taken_is_told_again_and_the_close_only_after_it(hub: Hub, quick_retries) -> None:
    broker, ann = broker_of(hub), FakeConnection("ann-1")
    broker.failing["connection_opened"] = 2
    assert await hub.register(ann, "ann") is None  # presence lags; the connection is sound
    await broker.wait_calls("connection_opened", 3)
    await hub.unregister(ann, "ann")
    await broker.wait_calls("connection_closed", 1)
    assert [c.type for c in broker.calls if c.type.startswith("connection_")][-2:] == [
        "connection_opened",
        "connection_closed",
    ]


async def test_an_open_still_failing_when_the_connection_closes_stops_and_the_close_goes(hub: Hub) -> None:
    broker, ann = broker_of(hub), FakeConnection("ann-1")
    broker.failing["connection_opened"] = 1000
    assert await hub.register(ann, "ann") is None
    await hub.unregister(ann, "ann")
    await broker.wait_calls("connection_closed", 1)
    assert len(broker.of("connection_opened")) == 1  # the first retry had not come yet


async def test_a_closing_connection_says_which_items_it_was_sent(hub: Hub) -> None:
    """Per room, the seq of the latest room.item_added it was sent: pushes are for what came after."""
    broker, ann = broker_of(hub), FakeConnection("ann-1")
    broker.rooms = {"ann": ["r1", "r2"]}
    assert await hub.register(ann, "ann") is None
    for delivery in (item_added("r1", 3), item_added("r1", 4), item_added("r2", 1)):
        broker.send(Routed(room_key(delivery.data["item"]["room_id"]), delivery))
    async with asyncio.timeout(WAIT):
        await broker.idle.wait()
    await hub.unregister(ann, "ann")
    (closed,) = await broker.wait_calls("connection_closed", 1)
    assert closed.data["delivered"] == {"r1": 4, "r2": 1}


async def test_when_the_broker_reconnects_every_connection_is_closed_1012(hub: Hub) -> None:
    """Deliveries sent while the gateway had no queue are lost: its clients connect again and catch up."""
    broker = broker_of(hub)
    ann, bo = FakeConnection("ann-1"), FakeConnection("bo-1")
    assert await hub.register(ann, "ann") is None and await hub.register(bo, "bo") is None
    broker.reconnect.set()
    async with asyncio.timeout(WAIT):
        await asyncio.gather(ann.closing.wait(), bo.closing.wait())
    assert ann.closed is not None and bo.closed is not None
    assert ann.closed[0] == bo.closed[0] == 1012


@pytest.fixture
async def second(settings: Settings, gateway: Gateway) -> AsyncIterator[str]:
    """The URL of a second gateway of the same namespace."""
    other = Gateway(settings.model_copy(update={"gateway_port": free_ports(1)}))
    await other.start()
    async with asyncio.timeout(WAIT):
        await other.connected()
    yield f"ws://127.0.0.1:{other.port}/ws"
    await other.stop()


@pytest.fixture
async def reports(amqp, settings: Settings) -> Callable[[str, str, int], Awaitable[None]]:
    """``await reports(gateway_id, user_id, n)``: wait until that gateway has reported ``n`` of the user's requests."""
    queue = await amqp.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(settings.names.deliveries, routing_key=GATEWAYS)
    seen: asyncio.Queue[RateReport] = asyncio.Queue()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        seen.put_nowait(RateReport.model_validate_json(message.body))

    await queue.consume(on_message, no_ack=True)

    async def wait(gateway_id: str, user_id: str, count: int) -> None:
        total = 0
        async with asyncio.timeout(WAIT):
            while total < count:
                report = await seen.get()
                if report.gateway_id == gateway_id:
                    total += report.requests.get(user_id, 0)

    return wait


@pytest.mark.integration
@pytest.mark.parametrize("overrides", [{"rate_limit_per_minute": LIMIT}])
async def test_the_rate_limit_holds_across_gateways(url: str, second: str, gateway: Gateway, workers, reports) -> None:
    """A user's requests on one gateway count on the other once reported (about a second later)."""
    here, there = await sign_in(url, "ann"), await sign_in(second, "ann")
    for _ in range(LIMIT - 1):
        assert (await request(here, "ping"))["type"] == "ok"
    await reports(gateway.hub.gateway_id, "ann", LIMIT - 1)
    # The reply comes through the second gateway's queue after the report: it has merged it by then.
    assert (await request(there, "get_me"))["type"] == "ok"
    refused = await request(there, "ping")
    assert refused["error"]["code"] == "rate_limited"
    other_user = await sign_in(second, "bo")
    assert (await request(other_user, "ping"))["type"] == "ok"  # per user
    for ws in (here, there, other_user):
        await ws.close()


@pytest.mark.integration
async def test_a_connection_past_the_users_cap_is_refused_with_4429(url: str, workers, gateway: Gateway) -> None:
    """The users worker counts connections over every gateway; the one it refuses is never served."""
    workers["users"].handler = lambda command: (
        failure("rate_limited", "too many connections") if command.type == "connection_opened" else Reply(ok={})
    )
    async with connect(url) as ws:
        answer = await request(ws, "authenticate", {"dev_user": {"id": "ann", "name": "Ann"}})
        assert answer["error"] == {"code": "rate_limited", "message": "too many connections"}
        assert (await closed(ws))[0] == 4429
    assert not gateway.hub.registry.connected("ann")
    assert not [c for c in workers["users"].seen if c.type == "connection_closed"]


@pytest.mark.integration
async def test_a_real_close_the_users_worker_fails_to_take_is_told_again(url: str, workers) -> None:
    """The fault hits an actual close: the users worker answers unavailable twice, then takes it."""
    users = workers["users"]
    refusals = 2

    def flaky(command: Command) -> Reply:
        nonlocal refusals
        if command.type == "connection_closed" and refusals:
            refusals -= 1
            return failure("unavailable", "users is restarting")
        return Reply(ok={})

    users.handler = flaky
    ws = await sign_in(url, "ann")
    opened = await users.next("connection_opened")
    await ws.close()
    closes = [await users.next("connection_closed") for _ in range(3)]
    assert {close.data["connection_id"] for close in closes} == {opened.data["connection_id"]}
    assert refusals == 0


@pytest.fixture
async def cut_off(settings: Settings) -> AsyncIterator[tuple[Proxy, Gateway]]:
    """A gateway that reaches RabbitMQ through a proxy the test can cut (workers reach it directly)."""
    upstream = urlsplit(settings.amqp_url)
    async with Proxy(upstream.hostname or "127.0.0.1", upstream.port or 5672) as proxy:
        amqp_url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/?reconnect_interval=0.2"
        gateway = Gateway(settings.model_copy(update={"amqp_url": amqp_url}))
        await gateway.start()
        async with asyncio.timeout(WAIT):
            await gateway.connected()
        yield proxy, gateway
        await gateway.stop()


async def queue_gone(settings: Settings, name: str) -> None:
    """Wait until the broker has dropped the queue ``name`` (it sends no signal: asked every 50 ms)."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        async with asyncio.timeout(WAIT):
            while True:
                channel = await connection.channel()
                try:
                    await channel.declare_queue(name, passive=True)
                except aio_pika.exceptions.ChannelClosed:
                    return
                await channel.close()
                await asyncio.sleep(0.05)
    finally:
        await connection.close()


@pytest.mark.integration
async def test_rooms_changed_while_the_gateway_was_cut_off_are_not_served_stale(
    cut_off: tuple[Proxy, Gateway], settings: Settings, workers, rooms, publish
) -> None:
    """Ann leaves r1 and joins r2 while her gateway has no broker connection (the deliveries saying
    so are lost with its queue): once it is back, her connection is closed with 1012, and connected
    again she gets r2's events and not r1's."""
    proxy, gateway = cut_off
    url = f"ws://127.0.0.1:{gateway.port}/ws"
    rooms.of["ann"] = ["r1"]
    ws = await sign_in(url, "ann")
    await publish(room_key("r1"), item_added("r1", 1))
    assert (await event(ws, "room.item_added"))["data"]["item"]["seq"] == 1

    proxy.cut()
    await queue_gone(settings, settings.names.gateway_queue(gateway.hub.gateway_id))
    rooms.of["ann"] = ["r2"]
    await publish(room_key("r1"), left("r1", "ann"))
    await publish(user_key("ann"), joined("r2", "ann"))
    proxy.restore()

    assert (await closed(ws))[0] == 1012
    again = await sign_in(url, "ann")
    await publish(room_key("r1"), item_added("r1", 2))
    await publish(room_key("r2"), item_added("r2", 1))
    got = await event(again, "room.item_added")
    assert got["data"]["item"]["room_id"] == "r2"
    await again.close()
