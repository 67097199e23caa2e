"""What the connections of one gateway process share: the broker, the registry, the rate limiter,
the Google token verifier (and its certificate cache).

Registering a user tells the users worker (sign-in, presence) and binds their deliveries; a
delivery from the queue is handed to the connections the registry names, never awaited on them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any

import structlog
from websockets.asyncio.server import ServerConnection

from boochat.settings import Settings
from contracts.envelope import Command, Delivery, Failure, Reply, Rider
from contracts.internal import ConnectionClosed, ConnectionOpened, RoomIds, SignIn, UserRooms
from gateway import frames
from gateway.auth import Identity
from gateway.broker import Broker
from gateway.google import GoogleVerifier
from gateway.limits import RateLimiter
from gateway.metrics import GatewayMetrics
from gateway.registry import Registry

if TYPE_CHECKING:
    from gateway.session import Session

log = structlog.get_logger("gateway.hub")

# How often a gateway tells the others what each user got accepted (gateway.limits.RateLimiter).
REPORT_SECONDS = 1.0
ROOMS_UNAVAILABLE = Failure(code="unavailable", message="your rooms could not be loaded, try again later")

# Waits between asking the rooms worker again for a connecting user's rooms: short, and bounded
# (each try is also bounded by the request timeout) so the client soon hears to try again later.
ROOMS_RETRY_SECONDS = (0.2, 0.5, 1.0)


class Hub:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.gateway_id = uuid.uuid4().hex[:12]
        self.registry: Registry[Session] = Registry()
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.google = GoogleVerifier(settings)
        self.broker = Broker(settings, self.gateway_id, self.registry.wanted, self.deliver, self._merge)
        # Connections past their handshake that are not signed in yet (capped by gateway.http).
        self.signing_in: weakref.WeakSet[ServerConnection] = weakref.WeakSet()
        self.metrics = GatewayMetrics()
        self.metrics.watch_broker(lambda: self.broker.ready)

    async def call(self, worker: str, command: Command) -> Reply:
        return await self.broker.call(worker, command)

    async def _internal(self, worker: str, type_: str, user_id: str, data: Any) -> Reply:
        command = Command(type=type_, id=uuid.uuid4().hex, user_id=user_id, data=data.model_dump(mode="json"))
        return await self.broker.call(worker, command)

    async def sign_in(self, identity: Identity) -> Reply:
        """Keep the user's profile with the users worker; ``list_users`` sees them once this returns."""
        return await self._internal(
            "users", "sign_in", identity.user.id, SignIn(user=identity.user, email=identity.email)
        )

    async def register(self, session: Session, user_id: str) -> Failure | None:
        """Bind the user's deliveries and their rooms' (the user key first: no join can slip by).

        Refused, with nothing registered, when the user's rooms cannot be had (a connection that
        misses rooms is never served) or the users worker counts too many connections of the user.
        """
        await self.broker.sync(self.registry.add(user_id, session))
        room_ids = await self._rooms_of(user_id)
        if room_ids is None:
            await self.broker.sync(self.registry.remove(user_id, session))
            return ROOMS_UNAVAILABLE
        await self.broker.sync(self.registry.join(user_id, room_ids))
        opened = ConnectionOpened(connection_id=session.id, gateway_id=self.gateway_id)
        reply = await self._internal("users", "connection_opened", user_id, opened)
        if reply.error is not None and reply.error.code == "rate_limited":
            await self.broker.sync(self.registry.remove(user_id, session))
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

    async def unregister(self, session: Session, user_id: str) -> None:
        await self.broker.sync(self.registry.remove(user_id, session))
        self.limiter.forget_idle(user_id, time.monotonic())
        closed = ConnectionClosed(connection_id=session.id, gateway_id=self.gateway_id)
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

    def _merge(self, counts: dict[str, int]) -> None:
        self.limiter.merge(counts, time.monotonic())

    async def deliver(self, key: str, delivery: Delivery) -> None:
        self.metrics.deliveries.inc()
        await self._route(key, delivery)
        for rider in delivery.riders:  # a member's own event, carried by their room's delivery
            await self._route(rider.key, rider)

    async def _route(self, key: str, delivery: Delivery | Rider) -> None:
        recipients, changed = self.registry.route(key, delivery)
        if recipients:
            text = frames.event(delivery.event, delivery.data)
            for session in recipients:
                session.deliver(delivery.id, text)
        if changed:
            await self.broker.sync(changed)
