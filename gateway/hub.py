"""What the connections of one gateway process share: the broker, the registry, the rate limiter,
the Google token verifier (and its certificate cache).

Registering a user tells the users worker (sign-in, presence) and binds their deliveries. What the
broker yields is routed here, one at a time: a delivery is handed to the connections the registry
names, never awaited on them; a rate report goes to the limiter. Bindings follow the registry: the
hub asks the broker for them, under one lock, with what the registry wants once the lock is held.

Presence converges after any fault: a ``connection_opened`` or ``connection_closed`` the users
worker did not take is tried again in the background (both are idempotent) until it is, or the
gateway stops (then the users worker's sweep closes what this gateway left open, once its queue is
gone). When the broker connection comes back after a loss, whatever was sent to this gateway
meanwhile is lost (its queue went with the connection): every connection is closed with 1012, and
its client, connecting again, gets its rooms afresh and reads what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Coroutine, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import structlog
from pydantic import BaseModel
from websockets.asyncio.server import ServerConnection

from boochat.settings import Settings
from contracts.envelope import Command, Delivery, Failure, Reply, Rider
from contracts.errors import CloseCode
from contracts.frames import SessionRevokedFrame, TypingFrame
from contracts.internal import ConnectionClosed, ConnectionOpened, RoomIds, SignIn, UserRooms
from contracts.routing import room_key
from gateway import frames
from gateway.broker import Broker, RateReport
from gateway.google import GoogleVerifier
from gateway.limits import RateLimiter, SignIns
from gateway.metrics import GatewayMetrics
from gateway.registry import TYPING, Registry

log = structlog.get_logger("gateway.hub")

# How often a gateway tells the others what each user got accepted (gateway.limits.RateLimiter).
REPORT_SECONDS = 1.0
ROOMS_UNAVAILABLE = Failure(code="unavailable", message="your rooms could not be loaded, try again later")

# Waits between asking the rooms worker again for a connecting user's rooms: short, and bounded
# (each try is also bounded by the request timeout) so the client soon hears to try again later.
ROOMS_RETRY_SECONDS = (0.2, 0.5, 1.0)
# Waits between tries of telling the users worker that a connection opened or closed, in turn (the
# last one over and over): a broker blip or a users worker restarting must not leave presence wrong.
PRESENCE_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
NO_ANSWER = frozenset({"timeout", "unavailable", "internal"})  # not a decision: try again
ITEM_ADDED = "room.item_added"
# A user's ``typing`` in a room reaches the others at most once every TYPING_SECONDS (PROTOCOL.md).
TYPING_SECONDS = 3.0
NOT_IN_ROOM = Failure(code="forbidden", message="not a member of this room")
SESSION_REVOKED = "session.revoked"  # the gateway closes the revoked session's connections


class Seen(NamedTuple):
    """A room item a delivery brings: a connection that sent it on keeps the room's latest ``seq``."""

    room_id: str
    seq: int


@dataclass
class Opening:
    """A ``connection_opened`` being tried again until it is taken or its connection closes."""

    task: asyncio.Task[None]
    closed: asyncio.Event


class Connection(Hashable, Protocol):
    """What the hub needs of a client connection (``gateway.session.Session``): it is defined here,
    below the session, so the hub never imports the module that imports it."""

    @property
    def id(self) -> str: ...

    @property
    def delivered(self) -> Mapping[str, int]:
        """Per room, the ``seq`` of the latest item sent on to the client."""

    def deliver(self, delivery_id: str, text: str, seen: Seen | None = None) -> None:
        """Queue an event for the client; never waits."""

    def close(self, code: int, reason: str) -> None:
        """Close after what is already queued; never waits."""

    def end_session(self, session_id: str) -> None:
        """Close if signed in with this device session (``session.revoked``); never waits."""


class Hub:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.gateway_id = uuid.uuid4().hex[:12]
        self.registry: Registry[Connection] = Registry()
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.google = GoogleVerifier(settings)
        self.broker = Broker(settings, self.gateway_id)
        # Connections past their handshake that are not signed in yet (capped by gateway.http).
        self.signing_in: SignIns[ServerConnection] = SignIns()
        self.metrics = GatewayMetrics()
        self.metrics.watch_broker(lambda: self.broker.ready)
        self._binding = asyncio.Lock()
        self._unsettled: set[str] = set()  # keys whose binding may have to change, waiting for their turn
        self._relaying: asyncio.Task[None] | None = None
        self._resyncing: asyncio.Task[None] | None = None
        self._opening: dict[str, Opening] = {}  # connection id -> its connection_opened tried again
        self._typed: dict[tuple[str, str], float] = {}  # (user id, room id) -> when typing was last sent on
        self._presence: set[asyncio.Task[None]] = set()  # presence calls in the background
        self._stopping = asyncio.Event()

    async def connect(self) -> None:
        """Connect the broker (retrying until it answers), then route what it yields until ``close``."""
        await self.broker.connect()
        self._relaying = asyncio.create_task(self._relay())
        self._resyncing = asyncio.create_task(self._resync())

    async def close(self) -> None:
        """Stop: presence calls in flight get the request timeout to end, then routing stops."""
        self._stopping.set()
        if self._presence:
            await asyncio.wait(set(self._presence), timeout=self.settings.request_timeout_seconds)
        for task in (*self._presence, self._relaying, self._resyncing):
            if task is not None:
                task.cancel()
        await asyncio.gather(*self._presence, self._relaying or asyncio.sleep(0), return_exceptions=True)
        await asyncio.gather(self._resyncing or asyncio.sleep(0), return_exceptions=True)
        await self.broker.close()

    async def call(self, worker: str, command: Command) -> Reply:
        return await self.broker.call(worker, command)

    async def _internal(self, worker: str, type_: str, user_id: str, data: BaseModel) -> Reply:
        command = Command(type=type_, id=uuid.uuid4().hex, user_id=user_id, data=data.model_dump(mode="json"))
        return await self.broker.call(worker, command)

    async def sign_in(self, request: SignIn) -> Reply:
        """Keep the user's profile (and device session) with the users worker, which refuses a
        session that ended and an unusable invite; ``list_users`` sees them once this returns."""
        return await self._internal("users", "sign_in", request.user.id, request)

    async def register(self, connection: Connection, user_id: str) -> Failure | None:
        """Bind the user's deliveries and their rooms' (the user key first: no join can slip by).

        Refused, with nothing registered, when the user's rooms cannot be had (a connection that
        misses rooms is never served) or the users worker counts too many connections of the user.
        """
        await self._rebind(self.registry.add(user_id, connection))
        room_ids = await self._rooms_of(user_id)
        if room_ids is None:
            await self._rebind(self.registry.remove(user_id, connection))
            return ROOMS_UNAVAILABLE
        await self._rebind(self.registry.join(user_id, room_ids))
        opened = ConnectionOpened(connection_id=connection.id, gateway_id=self.gateway_id)
        reply = await self._internal("users", "connection_opened", user_id, opened)
        if reply.error is not None and reply.error.code == "rate_limited":
            await self._rebind(self.registry.remove(user_id, connection))
            return reply.error
        if reply.error is not None:  # presence lags; the connection itself is sound
            log.warning("connection_opened_failed", user_id=user_id, error=reply.error.code)
            closed = asyncio.Event()
            retry = self._tell_users("connection_opened", user_id, opened, until=closed, first_try=False)
            self._opening[connection.id] = Opening(self._in_background(retry), closed)
        return None

    async def typing(self, user_id: str, room_id: str, active: bool) -> Failure | None:
        """Tell the room's other connected members that the user is typing (or stopped): ephemeral,
        straight to the gateways, at most once every ``TYPING_SECONDS`` per user and room; a stop
        only after a start. Refused for a room the user is not in (as this gateway knows it)."""
        if not self.registry.in_room(user_id, room_id):
            return NOT_IN_ROOM
        now, key = time.monotonic(), (user_id, room_id)
        last = self._typed.get(key)
        if active and last is not None and now - last < TYPING_SECONDS:
            return None
        if not active and self._typed.pop(key, None) is None:
            return None
        if active:
            self._typed[key] = now
        frame = TypingFrame(room_id=room_id, user_id=user_id, active=active)
        delivery = Delivery(id=uuid.uuid4().hex, event=TYPING, data=frame.model_dump(mode="json"))
        await self.broker.signal(room_key(room_id), delivery)
        return None

    def _forget_typing(self, now: float) -> None:
        """Drop the typing marks old enough that a client has stopped showing them."""
        for key in [key for key, at in self._typed.items() if now - at >= 2 * TYPING_SECONDS]:
            del self._typed[key]

    async def _rooms_of(self, user_id: str) -> list[str] | None:
        """The user's rooms from the rooms worker, asked again a few times; None if it never answers."""
        for delay in (0.0, *ROOMS_RETRY_SECONDS):
            await asyncio.sleep(delay)
            reply = await self._internal("rooms", "user_rooms", user_id, UserRooms())
            if reply.error is None and reply.ok is not None:
                return RoomIds.model_validate(reply.ok).room_ids
            log.warning("user_rooms_failed", user_id=user_id, error=reply.error and reply.error.code)
        return None

    async def unregister(self, connection: Connection, user_id: str) -> None:
        """Stop routing to ``connection``; the users worker is told in the background (``_closed``)."""
        await self._rebind(self.registry.remove(user_id, connection))
        self.limiter.forget_idle(user_id, time.monotonic())
        closed = ConnectionClosed(
            connection_id=connection.id, gateway_id=self.gateway_id, delivered=dict(connection.delivered)
        )
        self._in_background(self._closed(user_id, closed, self._opening.pop(connection.id, None)))

    async def _closed(self, user_id: str, closed: ConnectionClosed, opening: Opening | None) -> None:
        if opening is not None:  # its try in flight ends first, so the close never overtakes it
            opening.closed.set()
            await opening.task
        await self._tell_users("connection_closed", user_id, closed)

    async def _tell_users(
        self, type_: str, user_id: str, data: BaseModel, until: asyncio.Event | None = None, first_try: bool = True
    ) -> None:
        """Send the users worker ``type_`` until it decides it (a refusal is a decision), waiting
        longer after each failure; given up when ``until`` is set or the gateway stops."""
        for attempt in itertools.count():
            if attempt or first_try:
                reply = await self._internal("users", type_, user_id, data)
                if reply.error is None or reply.error.code not in NO_ANSWER:
                    if reply.error is not None:
                        log.warning(f"{type_}_refused", user_id=user_id, error=reply.error.code)
                    return
                log.warning(f"{type_}_failed", user_id=user_id, error=reply.error.code, attempt=attempt)
            delay = PRESENCE_RETRY_SECONDS[min(attempt, len(PRESENCE_RETRY_SECONDS) - 1)]
            if await self._interrupted(delay, until):
                return

    async def _interrupted(self, delay: float, until: asyncio.Event | None) -> bool:
        """Wait ``delay`` seconds; True, at once, when ``until`` is set or the gateway stops meanwhile."""
        waits = [asyncio.ensure_future(event.wait()) for event in (self._stopping, until) if event is not None]
        done, pending = await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        for wait in pending:
            wait.cancel()
        return bool(done)

    def _in_background(self, call: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(call)
        self._presence.add(task)
        task.add_done_callback(self._presence.discard)
        return task

    async def _resync(self) -> None:
        """Each time the broker connection comes back, close every connection with 1012: what was
        sent to this gateway meanwhile is lost (joins and leaves too), and a client connecting again
        gets its rooms afresh and reads what it missed (runs until cancelled)."""
        while True:
            await self.broker.reconnected()
            connections = self.registry.connections()
            log.warning("broker_reconnected", closing=len(connections))
            for connection in connections:
                connection.close(CloseCode.SERVICE_RESTART, "events may have been missed, connect again")

    async def report_requests(self) -> None:
        """Every ``REPORT_SECONDS``, tell the other gateways what this one accepted (runs until cancelled)."""
        while True:
            await asyncio.sleep(REPORT_SECONDS)
            self.limiter.prune(time.monotonic())
            self._forget_typing(time.monotonic())
            counts = self.limiter.report()
            if counts:
                await self.broker.report(counts)

    async def _rebind(self, keys: Iterable[str]) -> None:
        """Bind or unbind each key so that it matches what the registry wants.

        One change of bindings at a time, and what the registry wants is read only once this one's
        turn has come: whatever order racing joins and leaves run in, the last change to reach a key
        reads what the registry wants after all of them, so the bindings settle right. Changes
        waiting for their turn are settled together by the first of them to get it (a storm of
        sign-ins waits for one pass over the keys, not one pass each).
        """
        self._unsettled.update(keys)
        async with self._binding:
            if not self._unsettled:  # a change that took its turn meanwhile settled these keys too
                return
            settling, self._unsettled = self._unsettled, set()
            await self.broker.bind({key: self.registry.wanted(key) for key in settling})

    async def _relay(self) -> None:
        """Route what the broker yields, one at a time: it takes its next message only once this
        one is routed and the bindings it changed are in place (runs until cancelled)."""
        async with contextlib.aclosing(self.broker.arrivals()) as arrivals:
            async for arrival in arrivals:
                if isinstance(arrival, RateReport):
                    self.limiter.merge(arrival.requests, time.monotonic())
                    continue
                try:
                    await self._deliver(arrival.key, arrival.delivery)
                except Exception:  # logged, and acknowledged all the same: sending it again would not help
                    log.exception("delivery_failed", routing_key=arrival.key)

    async def _deliver(self, key: str, delivery: Delivery) -> None:
        self.metrics.deliveries.inc()
        await self._route(key, delivery)
        for rider in delivery.riders:  # a member's own event, carried by their room's delivery
            await self._route(rider.key, rider)

    async def _route(self, key: str, delivery: Delivery | Rider) -> None:
        recipients, changed = self.registry.route(key, delivery)
        if recipients:
            text = frames.event(delivery.event, delivery.data)
            seen = _seen(delivery) if delivery.event == ITEM_ADDED else None
            for connection in recipients:
                connection.deliver(delivery.id, text, seen)
            if delivery.event == SESSION_REVOKED:  # after the event: those connections close
                revoked = SessionRevokedFrame.model_validate(delivery.data).session_id
                for connection in recipients:
                    connection.end_session(revoked)
        if changed:
            await self._rebind(changed)


def _seen(delivery: Delivery | Rider) -> Seen | None:
    """The room and ``seq`` of the item a ``room.item_added`` brings (None if it breaks its contract)."""
    item = delivery.data.get("item")
    if not isinstance(item, dict):
        return None
    room_id, seq = item.get("room_id"), item.get("seq")
    return Seen(room_id, seq) if isinstance(room_id, str) and isinstance(seq, int) else None
