"""Helpers of the fault tests: a client that retries like a careful one, a room's whole history read
by ``seq``, and the check that every worker consumes again."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from support.client import Client, RequestError
from support.private_broker import PrivateBroker
from websockets.exceptions import ConnectionClosed, WebSocketException

from boochat.settings import Settings
from boochat.supervisor import available_workers
from boochat.topology import queue_names

RETRYABLE = {"timeout", "unavailable"}  # PROTOCOL.md: not outcomes; retry with the same id
GIVE_UP = 90.0  # seconds one command may take over all its retries
UNLIMITED = 1_000_000  # requests per minute for the stacks here: bursts are not what the rate limit is about
BACKOFF = (0.1, 0.2, 0.5, 1.0)  # a careful client's pause between retries (never hammer a broker that is down)


class Persistent:
    """One user's client that retries every command with the same id until it is ``ok``, opening a
    new connection (same user) when the one it had closes. Any other error fails the test; so does a
    request that gets no reply at all while its connection stays open (PROTOCOL.md: every request
    gets exactly one reply unless the connection closes first)."""

    def __init__(self, ws_url: str, user: Mapping[str, Any], reply_within: float) -> None:
        self.ws_url = ws_url
        self.user = dict(user)
        self.reply_within = reply_within
        self.client: Client | None = None
        self.retried: Counter[str] = Counter()  # why commands were retried: error codes, "connection"
        self.in_flight = 0  # commands sent (or being retried) with no ok yet
        self._connecting = asyncio.Lock()
        self._changed = asyncio.Condition()

    @property
    def id(self) -> str:
        return self.user["id"]

    @classmethod
    async def connect(cls, ws_url: str, user: Mapping[str, Any], reply_within: float) -> Persistent:
        persistent = cls(ws_url, user, reply_within)
        await persistent.connection()
        return persistent

    async def connection(self) -> Client:
        """The open connection, or a new one once one can be made."""
        async with self._connecting:
            attempt = 0
            while self.client is None or self.client.close_code is not None:
                try:
                    self.client = await Client.connect(self.ws_url, dev_user=self.user, timeout=self.reply_within)
                except (OSError, TimeoutError, WebSocketException, ConnectionError) as error:
                    await self._retrying(f"connect: {type(error).__name__}", attempt)
                except RequestError as refused:  # authenticate answered an error
                    assert refused.code in RETRYABLE, refused
                    await self._retrying(f"connect: {refused.code}", attempt)
                else:
                    return self.client
                attempt += 1
            return self.client

    async def wait_retried(self, count: int, timeout: float = GIVE_UP) -> None:
        """Wait until this client has had to retry ``count`` times in all (a fault reached it)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.retried.total() >= count)

    async def _retrying(self, reason: str, attempt: int) -> None:
        async with self._changed:
            self.retried[reason] += 1
            self._changed.notify_all()
        await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])

    async def ok(self, type: str, data: Mapping[str, Any], id: str | None = None) -> dict[str, Any]:
        """``type`` with ``data`` under one id, retried until ``ok``; the reply's data."""
        request_id = id or str(uuid.uuid4())
        self.in_flight += 1
        try:
            return await self._ok(type, data, request_id)
        finally:
            self.in_flight -= 1

    async def _ok(self, type: str, data: Mapping[str, Any], request_id: str) -> dict[str, Any]:
        attempt = 0
        async with asyncio.timeout(GIVE_UP):
            while True:
                client = await self.connection()
                try:
                    frame = await client.request(type, data, id=request_id, timeout=self.reply_within)
                except (ConnectionError, ConnectionClosed):  # closed before the reply: the command may have acted
                    await self._retrying("connection", attempt)
                else:
                    if frame["type"] == "ok":
                        return frame["data"]
                    code = frame["error"]["code"]
                    assert code in RETRYABLE, f"{type} {request_id}: {frame['error']}"
                    await self._retrying(code, attempt)
                attempt += 1

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


class Burst:
    """Messages sent into one room by a few lanes at once, each retried until ``ok``, until
    ``stop()``, then ``tail`` more per lane: the faults happen while it flows. Each lane pauses
    ``pace`` seconds between messages (the load's shape, not a wait for anything)."""

    def __init__(self, sender: Persistent, room_id: str, lanes: int = 4, tail: int = 3, pace: float = 0.05) -> None:
        self.sender = sender
        self.room_id = room_id
        self.lanes = lanes
        self.tail = tail
        self.pace = pace
        self.acked: dict[str, dict[str, Any]] = {}  # content -> the item its reply carried
        self._stopping = asyncio.Event()
        self._progress = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> Burst:
        self._tasks = [asyncio.create_task(self._lane(lane)) for lane in range(self.lanes)]
        return self

    async def reached(self, count: int, timeout: float = GIVE_UP) -> None:
        """Wait until ``count`` messages in all have been acknowledged."""
        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(lambda: len(self.acked) >= count or any(t.done() for t in self._tasks))
        for task in self._tasks:
            if task.done():
                task.result()  # a lane that failed fails the test here

    async def stop(self) -> dict[str, dict[str, Any]]:
        """Stop after each lane's tail; every acknowledged message (all of them were sent)."""
        self._stopping.set()
        await asyncio.gather(*self._tasks)
        return self.acked

    async def _lane(self, lane: int) -> None:
        count = 0
        after_stop = 0
        while after_stop < self.tail:
            content = f"lane {lane} message {count}"
            reply = await self.sender.ok("send_message", {"room_id": self.room_id, "content": content})
            async with self._progress:
                self.acked[content] = reply["item"]
                self._progress.notify_all()
            count += 1
            after_stop += self._stopping.is_set()
            await asyncio.sleep(self.pace)


async def history(client: Persistent, room_id: str, page: int = 100) -> list[dict[str, Any]]:
    """Every item of the room, read by ``seq`` from the first, ``page`` at a time."""
    items: list[dict[str, Any]] = []
    while True:
        after = items[-1]["seq"] if items else 0
        got = await client.ok("get_room_items", {"room_id": room_id, "after_seq": after, "limit": page})
        items.extend(got["items"])
        if not got["has_more"]:
            return items


def assert_gap_free(items: list[dict[str, Any]]) -> None:
    """Items numbered 1, 2, 3... with no number missing or repeated, and no item twice."""
    assert [item["seq"] for item in items] == list(range(1, len(items) + 1))
    assert len({item["id"] for item in items}) == len(items)


def worker_queues(settings: Settings) -> list[str]:
    """Every queue a worker consumes: its commands and each of its reactions and projections."""
    workers = set(available_workers())
    return [name for name in queue_names(settings.names).names if name.split(".")[1] in workers]


async def consuming_again(broker: PrivateBroker, settings: Settings, within: float) -> None:
    """Wait (at most ``within`` seconds) until every worker queue has a consumer again."""
    wanted = worker_queues(settings)
    missing = wanted
    try:
        async with asyncio.timeout(within):
            while True:
                queues = await broker.queues()
                missing = [name for name in wanted if queues.get(name, (0, 0))[1] < 1]
                if not missing:
                    return
                await asyncio.sleep(0.5)  # polling interval: rabbitmqctl boots a VM per call
    except TimeoutError:
        raise AssertionError(f"no consumer within {within} s on {missing}") from None


def assert_stored_once(items: list[dict[str, Any]], acked: Mapping[str, dict[str, Any]]) -> None:
    """Every acknowledged message is stored exactly once, as its reply said; no other message is."""
    messages = [item for item in items if item["kind"] == "message"]
    assert sorted(item["content"] for item in messages) == sorted(acked)
    for item in messages:
        assert item == acked[item["content"]], f"stored {item}, acknowledged {acked[item['content']]}"


class Comings:
    """Cat is invited to the room and leaves it, over and over, each change retried until ok, while
    the faults happen: membership changes are in flight too. ``member`` is what the last ok said."""

    def __init__(self, ann: Persistent, cat: Persistent, room_id: str) -> None:
        self.ann, self.cat, self.room_id = ann, cat, room_id
        self.member = False
        self.changes = 0
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            if self.member:
                await self.cat.ok("leave_room", {"room_id": self.room_id})
            else:
                await self.ann.ok("invite_to_room", {"room_id": self.room_id, "user_id": self.cat.id})
            self.member = not self.member
            self.changes += 1
            await asyncio.sleep(0.05)  # the load's shape, not a wait for anything

    async def stop(self) -> bool:
        self._stop.set()
        await self._task
        return self.member


async def membership_and_presence_hold(comings: Comings, online: list[Persistent], offline: set[str]) -> None:
    """Cat is in the room exactly when the last ok said so (and posts or is refused accordingly); once
    Cat disconnects, presence says so: the ``online`` clients are listed, Cat and ``offline`` are not."""
    member = await comings.stop()
    assert comings.changes >= 2, "membership changes were in flight during the faults"
    asker = online[0]
    room = (await asker.ok("get_room", {"room_id": comings.room_id}))["room"]
    assert (comings.cat.id in room["participant_ids"]) == member
    client = await comings.cat.connection()
    reply = await client.request("send_message", {"room_id": comings.room_id, "content": "still here?"})
    assert (reply["type"] == "ok") == member, reply
    await comings.cat.close()
    await presence_is(asker, {c.id for c in online}, absent={comings.cat.id, *offline})


async def presence_is(client: Persistent, online: set[str], absent: set[str], within: float = 30.0) -> None:
    """``list_online_users`` comes to list all of ``online`` and none of ``absent`` (presence converges)."""
    listed: set[str] = set()
    async with asyncio.timeout(within):
        while True:
            listed = set((await client.ok("list_online_users", {}))["user_ids"])
            if online <= listed and not absent & listed:
                return
            await asyncio.sleep(0.2)  # polling a query: presence has no event to wait on across users
