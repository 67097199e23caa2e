"""Everything the users worker answers: the directory, sign-ins and presence."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from boochat import topology
from contracts import internal
from contracts.common import Shape
from contracts.envelope import AnyEvent, Fact
from contracts.events import PresenceChanged, ProfileChanged
from contracts.internal import Users
from contracts.requests import Empty, OnlineUsers, UserList, UserReply
from workers.runtime.context import ATTEMPTS, Context, Runtime
from workers.runtime.outbox import Cause
from workers.runtime.store import ConcurrencyError
from workers.runtime.tables import Chore, CommandHandler, Projection, Reaction, typed
from workers.users import domain, storage
from workers.users.storage import UserDoc

log = structlog.get_logger()


class Done(Shape):
    pass


async def sign_in(data: internal.SignIn, ctx: Context) -> Done:
    doc = await storage.load(data.user.id)
    state, facts = domain.sign_in(doc.state() if doc else None, data.user, data.email)
    if facts:
        await ctx.commit(doc.with_state(state) if doc else UserDoc.new(state), facts)
    return Done()


async def connection_opened(data: internal.ConnectionOpened, ctx: Context) -> Done:
    limit = ctx.runtime.settings.max_connections_per_user
    return await _count(ctx, lambda state: domain.connect(state, f"{data.gateway_id}/{data.connection_id}", limit))


async def connection_closed(data: internal.ConnectionClosed, ctx: Context) -> Done:
    return await _count(ctx, lambda state: domain.disconnect(state, f"{data.gateway_id}/{data.connection_id}"))


async def _count(ctx: Context, change: Callable[[domain.UserState], list[Fact]]) -> Done:
    doc = await storage.load(ctx.user_id or "")
    state = domain.existing(doc.state() if doc else None)
    if doc is not None and (facts := change(state)):
        await ctx.commit(doc.with_state(state), facts)
    return Done()


async def resolve_users(data: internal.ResolveUsers, ctx: Context) -> Users:
    return Users(users=[profile.view() for profile in await storage.profiles(data.ids)])


async def get_me(data: Empty, ctx: Context) -> UserReply:
    found = await storage.profiles([ctx.user_id or ""])
    if not found:
        raise domain.UnknownUserError()
    return UserReply(user=found[0].view())


async def list_users(data: Empty, ctx: Context) -> UserList:
    return UserList(users=sorted((p.view() for p in await storage.everyone()), key=lambda u: (u.name, u.id)))


async def list_online_users(data: Empty, ctx: Context) -> OnlineUsers:
    return OnlineUsers(user_ids=sorted(profile.id for profile in await storage.online()))


async def index_profile(payload: ProfileChanged, event: AnyEvent) -> None:
    await storage.set_profile(payload.user, event.version)


async def index_presence(payload: PresenceChanged, event: AnyEvent) -> None:
    await storage.set_presence(payload.user_id, payload.online, event.version)


async def close_dead_gateways(runtime: Runtime) -> None:
    """Connections of a gateway that died never get connection_closed: a gateway's exclusive queue
    lives exactly as long as its broker connection, so a missing queue means the gateway is gone."""
    assert runtime.connection is not None, "chores start once the worker is connected"
    docs = await storage.connected()
    for gateway_id in domain.gateways([doc.state() for doc in docs]):
        if await topology.queue_exists(runtime.connection, runtime.settings.names.gateway_queue(gateway_id)):
            continue
        log.info("gateway gone; closing its connections", gateway_id=gateway_id)
        for doc in docs:
            await _close_gateway(runtime, doc.id, gateway_id)


async def _close_gateway(runtime: Runtime, user_id: str, gateway_id: str) -> None:
    ctx = Context(runtime, Cause(None, f"gateway-gone-{gateway_id}", None), user_id)
    for _ in range(ATTEMPTS):
        try:
            await _count(ctx, lambda state: domain.gateway_gone(state, gateway_id))
            return
        except ConcurrencyError:
            continue


COMMANDS: dict[str, CommandHandler] = {
    "sign_in": sign_in,
    "connection_opened": connection_opened,
    "connection_closed": connection_closed,
    "resolve_users": resolve_users,
    "get_me": get_me,
    "list_users": list_users,
    "list_online_users": list_online_users,
}

REACTIONS: dict[str, Reaction] = {}

CHORES = {
    "close_dead_gateways": Chore(lambda settings: settings.presence_sweep_seconds, close_dead_gateways),
}

PROJECTIONS = {
    "index_profiles": Projection(index_profile, typed(ProfileChanged, "user.profile_changed"), (storage.Profile,)),
    "index_presence": Projection(index_presence, typed(PresenceChanged, "user.presence_changed"), (storage.Profile,)),
}
