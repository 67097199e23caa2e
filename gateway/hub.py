"""What the connections of one gateway process share: the broker, the registry, the rate limiter,
the Google token verifier (and its certificate cache).

Registering a user tells the users worker (sign-in, presence) and binds their deliveries. What the
broker yields is routed here, one at a time: a delivery is handed to the connections the registry
names, never awaited on them; a rate report goes to the limiter. Bindings follow the registry: the
hub asks the broker for them, under one lock, with what the registry wants once the lock is held.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import weakref
from collections.abc import Hashable, Iterable
from typing import Protocol

import structlog
from pydantic import BaseModel
from websockets.asyncio.server import ServerConnection

from boochat.settings import Settings
from contracts.envelope import Command, Delivery, Failure, Reply, Rider
from contracts.internal import ConnectionClosed, ConnectionOpened, RoomIds, SignIn, UserRooms
from gateway import frames
from gateway.auth import Identity
from gateway.broker import Broker, RateReport
from gateway.google import GoogleVerifier
from gateway.limits import RateLimiter
from gateway.metrics import GatewayMetrics
from gateway.registry import Registry

log = structlog.get_logger("gateway.hub")

# How often a gateway tells the others what each user got accepted (gateway.limits.RateLimiter).
REPORT_SECONDS = 1.0
ROOMS_UNAVAILABLE = Failure(code="unavailable", message="your rooms could not be loaded, try again later")

# Waits between asking the rooms worker again for a connecting user's rooms: short, and bounded
# (each try is also bounded by the request timeout) so the client soon hears to try again later.
ROOMS_RETRY_SECONDS = (0.2, 0.5, 1.0)


class Connection(Hashable, Protocol):
    """What the hub needs of a client connection (``gateway.session.Session``): it is defined here,
    below the session, so the hub never imports the module that imports it."""

    @property
    def id(self) -> str: ...

    def deliver(self, delivery_id: str, text: str) -> None:
        """Queue an event for the client; never waits."""


class Hub:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.gateway_id = uuid.uuid4().hex[:12]
        self.registry: Registry[Connection] = Registry()
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.google = GoogleVerifier(settings)
        self.broker = Broker(settings, self.gateway_id)
        # Connections past their handshake that are not signed in yet (capped by gateway.http).
        self.signing_in: weakref.WeakSet[ServerConnection] = weakref.WeakSet()
        self.metrics = GatewayMetrics()
        self.metrics.watch_broker(lambda: self.broker.ready)
        self._binding = asyncio.Lock()
        self._relaying: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Connect the broker (retrying until it answers), then route what it yields until ``close``."""
        await self.broker.connect()
        self._relaying = asyncio.create_task(self._relay())

    async def close(self) -> None:
        if self._relaying is not None:
            self._relaying.cancel()
            await asyncio.gather(self._relaying, return_exceptions=True)
        await self.broker.close()

    async def call(self, worker: str, command: Command) -> Reply:
        return await self.broker.call(worker, command)

    async def _internal(self, worker: str, type_: str, user_id: str, data: BaseModel) -> Reply:
        command = Command(type=type_, id=uuid.uuid4().hex, user_id=user_id, data=data.model_dump(mode="json"))
        return await self.broker.call(worker, command)

    async def sign_in(self, identity: Identity) -> Reply:
        """Keep the user's profile with the users worker; ``list_users`` sees them once this returns."""
        return await self._internal(
            "users", "sign_in", identity.user.id, SignIn(user=identity.user, email=identity.email)
        )

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
        if reply.error is not None:  # presence may lag; the connection itself is sound
            log.warning("connection_opened_failed", user_id=user_id, error=reply.error.code)
        return None

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
        await self._rebind(self.registry.remove(user_id, connection))
        self.limiter.forget_idle(user_id, time.monotonic())
        closed = ConnectionClosed(connection_id=connection.id, gateway_id=self.gateway_id)
        reply = await self._internal("users", "connection_closed", user_id, closed)
        if reply.error is not None:
            log.warning("connection_closed_failed", user_id=user_id, error=reply.error.code)

    async def report_requests(self) -> None:
        """Every ``REPORT_SECONDS``, tell the other gateways what this one accepted (runs until cancelled)."""
        while True:
            await asyncio.sleep(REPORT_SECONDS)
            self.limiter.prune(time.monotonic())
            counts = self.limiter.report()
            if counts:
                await self.broker.report(counts)

    async def _rebind(self, keys: Iterable[str]) -> None:
        """Bind or unbind each key so that it matches what the registry wants.

        One change of bindings at a time, and what the registry wants is read only once this one's
        turn has come: whatever order racing joins and leaves run in, the last change to reach a key
        reads what the registry wants after all of them, so the bindings settle right.
        """
        async with self._binding:
            await self.broker.bind({key: self.registry.wanted(key) for key in keys})

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
            for connection in recipients:
                connection.deliver(delivery.id, text)
        if changed:
            await self._rebind(changed)
