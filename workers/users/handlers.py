"""Everything the users worker answers: the directory, sign-ins and presence."""

from __future__ import annotations

from contracts import internal
from contracts.common import Shape
from contracts.internal import Users
from contracts.requests import Empty, OnlineUsers, UserList, UserReply
from workers.runtime.service import Context
from workers.users import domain, storage
from workers.users.storage import UserDoc


class Done(Shape):
    pass


async def sign_in(data: internal.SignIn, ctx: Context) -> Done:
    doc = await storage.load(data.user.id)
    state, facts = domain.sign_in(doc.state() if doc else None, data.user, data.email)
    if facts:
        await ctx.commit(doc.update(state) if doc else UserDoc.new(state), facts)
    return Done()


async def connection_opened(data: internal.ConnectionOpened, ctx: Context) -> Done:
    doc = await storage.load(ctx.user_id or "")
    state = domain.existing(doc.state() if doc else None)
    if facts := domain.connect(state, f"{data.gateway_id}/{data.connection_id}"):
        await ctx.commit(doc.update(state), facts)  # type: ignore[union-attr]
    return Done()


async def connection_closed(data: internal.ConnectionClosed, ctx: Context) -> Done:
    doc = await storage.load(ctx.user_id or "")
    state = domain.existing(doc.state() if doc else None)
    if facts := domain.disconnect(state, f"{data.gateway_id}/{data.connection_id}"):
        await ctx.commit(doc.update(state), facts)  # type: ignore[union-attr]
    return Done()


async def resolve_users(data: internal.ResolveUsers, ctx: Context) -> Users:
    return Users(users=[doc.state().view() for doc in await storage.find(data.ids)])


async def get_me(data: Empty, ctx: Context) -> UserReply:
    doc = await storage.load(ctx.user_id or "")
    return UserReply(user=domain.existing(doc.state() if doc else None).view())


async def list_users(data: Empty, ctx: Context) -> UserList:
    users = sorted((doc.state().view() for doc in await storage.everyone()), key=lambda u: (u.name, u.id))
    return UserList(users=users)


async def list_online_users(data: Empty, ctx: Context) -> OnlineUsers:
    return OnlineUsers(user_ids=sorted(doc.id for doc in await storage.online()))


COMMANDS = {
    "sign_in": sign_in,
    "connection_opened": connection_opened,
    "connection_closed": connection_closed,
    "resolve_users": resolve_users,
    "get_me": get_me,
    "list_users": list_users,
    "list_online_users": list_online_users,
}

REACTIONS: dict = {}

