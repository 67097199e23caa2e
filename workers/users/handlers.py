"""Everything the users worker answers: the directory, sign-ins, presence, invites and device sessions."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import structlog

from boochat import topology
from contracts import internal
from contracts.common import Shape
from contracts.envelope import AnyEvent, Fact
from contracts.events import MemberJoined, MemberLeft, PresenceChanged, ProfileChanged, RoomCreated
from contracts.internal import OperatorInviteReply, SessionGrant, SignedIn, Users
from contracts.requests import (
    USERS_LISTED,
    CreateInvite,
    Empty,
    InviteList,
    InviteReply,
    ListUsers,
    OnlineUsers,
    RevokedSessions,
    RevokeInvite,
    RevokeSession,
    RevokeSessions,
    SessionList,
    UserList,
    UserReply,
)
from contracts.shapes import Invite
from workers.runtime.context import ATTEMPTS, Context, Kept, Runtime
from workers.runtime.outbox import Cause
from workers.runtime.store import ConcurrencyError
from workers.runtime.tables import Chore, CommandHandler, Mirror, Projection, Reaction, Replica, typed
from workers.users import domain, storage
from workers.users.domain import Memberships, RoomMembers
from workers.users.storage import InviteDoc, SessionDoc, UserDoc

log = structlog.get_logger()

OPERATOR = "boochat"  # the maker of the invites ``boochat invite`` and ``boochat up`` print
CODE_BYTES = 16  # an invite code: 22 URL-safe characters, not to be guessed


class Done(Shape):
    pass


async def sign_in(data: internal.SignIn, ctx: Context) -> SignedIn:
    """Every step is idempotent: a concurrent writer makes the runtime run it all again."""
    if data.invite is not None:
        await _redeem(data.invite, data.user.id, ctx)
    user_id = await _known_as(data)
    if data.session is not None:
        await _keep_session(data.session, user_id, data.renew, ctx)
    doc = await storage.load(user_id)
    profile = data.user.model_copy(update={"id": user_id})
    state, facts = domain.sign_in(doc.state() if doc else None, profile, data.email, rooms_of(ctx.runtime, user_id))
    if facts:
        await ctx.commit(doc.with_state(state) if doc else UserDoc.new(state), facts)
    return SignedIn(user_id=None if user_id == data.user.id else user_id)


async def _redeem(code: str, user_id: str, ctx: Context) -> None:
    doc = await storage.invite(code)
    state = doc.state() if doc else None
    if (facts := domain.redeem(state, user_id, ctx.now())) and doc is not None and state is not None:
        await ctx.commit(doc.with_state(state), facts)


async def _known_as(data: internal.SignIn) -> str:
    if data.legacy_id is None or await storage.load(data.user.id) is not None:
        return data.user.id
    legacy = await storage.load(data.legacy_id)
    return domain.known_as(data.user.id, legacy.state() if legacy else None, data.email)


async def _keep_session(grant: SessionGrant, user_id: str, renew: bool, ctx: Context) -> None:
    doc = await storage.session(grant.id)
    state = doc.state() if doc else None
    if renew:
        facts = domain.renew_session(state, user_id, ctx.now(), grant.expires_at)
    else:
        state, facts = domain.start_session(state, grant.id, user_id, grant.device, ctx.now(), grant.expires_at)
    if facts and state is not None:
        await ctx.commit(doc.with_state(state) if doc else SessionDoc.new(state), facts)


async def create_invite(data: CreateInvite, ctx: Context) -> InviteReply:
    return InviteReply(invite=await _invite(ctx, ctx.user_id or "", data.max_uses, data.expires_in))


async def operator_invite(data: internal.OperatorInvite, ctx: Context) -> OperatorInviteReply:
    if data.only_without_users and await storage.anyone():
        return OperatorInviteReply(invite=None)
    return OperatorInviteReply(invite=await _invite(ctx, OPERATOR, data.max_uses, data.expires_in))


async def _invite(ctx: Context, by: str, max_uses: int, expires_in: int) -> Invite:
    code = secrets.token_urlsafe(CODE_BYTES)  # a create_invite is claimed by id: its retry gets this code
    state, facts = domain.create_invite(code, by, ctx.now(), max_uses, expires_in)
    await ctx.commit(InviteDoc.new(state), facts)
    return state.view(ctx.now(), ctx.runtime.settings.public_base)


async def revoke_invite(data: RevokeInvite, ctx: Context) -> Empty:
    doc = await storage.invite(data.code)
    state = doc.state() if doc else None
    if (facts := domain.revoke_invite(state, ctx.user_id or "")) and doc is not None and state is not None:
        await ctx.commit(doc.with_state(state), facts)
    return Empty()


async def list_invites(data: Empty, ctx: Context) -> InviteList:
    base, now = ctx.runtime.settings.public_base, ctx.now()
    return InviteList(invites=[doc.state().view(now, base) for doc in await storage.invites_by(ctx.user_id or "")])


async def revoke_session(data: RevokeSession, ctx: Context) -> Empty:
    doc = await storage.session(data.session_id)
    state = doc.state() if doc else None
    if (facts := domain.revoke_session(state, ctx.user_id or "", ctx.now())) and doc is not None and state is not None:
        await ctx.commit(doc.with_state(state), facts)
    return Empty()


async def revoke_sessions(data: RevokeSessions, ctx: Context) -> RevokedSessions:
    """Sign out everywhere (but ``keep``): each live session is revoked by a write of its own."""
    revoked = []
    for doc in await storage.sessions_of(ctx.user_id or ""):
        state = doc.state()
        if state.id != data.keep and (facts := domain.revoke_session(state, ctx.user_id or "", ctx.now())):
            await ctx.commit(doc.with_state(state), facts)
            revoked.append(state.id)
    return RevokedSessions(session_ids=sorted(revoked))


async def list_sessions(data: Empty, ctx: Context) -> SessionList:
    docs = await storage.sessions_of(ctx.user_id or "")
    return SessionList(sessions=domain.signed_in([doc.state() for doc in docs], ctx.now()))


async def connection_opened(data: internal.ConnectionOpened, ctx: Context) -> Done:
    limit, rooms = ctx.runtime.settings.max_connections_per_user, rooms_of(ctx.runtime, ctx.user_id or "")
    connection = f"{data.gateway_id}/{data.connection_id}"
    return await _count(ctx, lambda state: domain.connect(state, connection, limit, rooms))


async def connection_closed(data: internal.ConnectionClosed, ctx: Context) -> Done:
    connection, rooms = f"{data.gateway_id}/{data.connection_id}", rooms_of(ctx.runtime, ctx.user_id or "")
    return await _count(ctx, lambda state: domain.disconnect(state, connection, data.delivered, rooms))


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


async def list_users(data: ListUsers, ctx: Context) -> UserList:
    """Version 1's ``{}``: everyone; else a page of the directory, read from its ``order`` index."""
    if not data.paged:
        return UserList(users=domain.by_name([profile.view() for profile in await storage.everyone()]))
    limit, after = data.limit or USERS_LISTED, domain.place_of(data.cursor) if data.cursor else None
    found = await storage.directory_page(after, domain.holding(data.query) if data.query else None, limit + 1)
    return domain.page([profile.view() for profile in found], limit)


async def list_online_users(data: Empty, ctx: Context) -> OnlineUsers:
    sharing = MEMBERSHIPS.state(ctx.runtime).sharing(ctx.user_id or "")
    return OnlineUsers(user_ids=sorted(await storage.online_among(sorted(sharing))))


async def index_profile(payload: ProfileChanged, event: AnyEvent) -> None:
    await storage.set_profile(payload.user, event.version)


async def index_presence(payload: PresenceChanged, event: AnyEvent) -> None:
    await storage.set_presence(payload.user_id, payload.online, event.version)


async def introduce_newcomer(payload: MemberJoined, ctx: Context) -> None:
    """The room's members learn the newcomer's profile and presence (sent again when redelivered:
    the deliveries' ids derive from the event, so gateways drop the copies)."""
    assert ctx.event is not None
    # This process routes the newcomer's next changes to the room from now on, whatever its
    # mirror's queue has reached (applying an event twice changes nothing).
    MEMBERSHIPS.reflect(ctx.runtime, ctx.event)
    if (doc := await storage.load(payload.user_id)) is not None:
        await ctx.runtime.outbox.send(ctx.event.event_id, domain.introduce(doc.state(), payload.room.id))


# Who shares a room with whom: a projection of the rooms worker's events (replay rebuilds it) and a
# mirror of it in each process, which presence and profile changes are routed by.

RoomChange = RoomCreated | MemberJoined | MemberLeft
ROOM_CHANGES: dict[str, type[Shape]] = {
    "room.created": RoomCreated,
    "room.member_joined": MemberJoined,
    "room.member_left": MemberLeft,
}


def _members(payload: RoomChange, event: AnyEvent) -> RoomMembers:
    return RoomMembers(payload.room.id, frozenset(payload.room.participant_ids), event.version)


async def copy_members(payload: RoomChange, event: AnyEvent) -> None:
    await storage.save_members(_members(payload, event))


def mirror_members(payload: RoomChange, event: AnyEvent, known: Memberships) -> None:
    known.merge([_members(payload, event)])


def merge_memberships(known: Memberships, loaded: Memberships) -> None:
    known.merge(loaded.rooms.values())


MEMBERSHIPS: Mirror[Memberships] = Mirror(
    mirror_members,
    ROOM_CHANGES,
    storage.stored_memberships,
    merge_memberships,
    Kept("memberships", lambda: Replica[Memberships](Memberships())),
)


def rooms_of(runtime: Runtime, user_id: str) -> list[str]:
    """The user's rooms, as this process's replica knows them."""
    return MEMBERSHIPS.state(runtime).rooms_of(user_id)


async def list_unlisted(runtime: Runtime) -> None:
    while await storage.list_unlisted() == storage.BATCH:
        continue


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
            await _count(ctx, lambda state: domain.gateway_gone(state, gateway_id, rooms_of(runtime, user_id)))
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
    "create_invite": create_invite,
    "operator_invite": operator_invite,
    "revoke_invite": revoke_invite,
    "list_invites": list_invites,
    "revoke_session": revoke_session,
    "revoke_sessions": revoke_sessions,
    "list_sessions": list_sessions,
}

REACTIONS: dict[str, Reaction] = {
    "introduce_newcomer": Reaction(introduce_newcomer, typed(MemberJoined, "room.member_joined")),
}

CHORES = {
    "close_dead_gateways": Chore(lambda settings: settings.presence_sweep_seconds, close_dead_gateways),
    "list_unlisted": Chore(lambda settings: settings.presence_sweep_seconds, list_unlisted),
}

PROJECTIONS = {
    "index_profiles": Projection(index_profile, typed(ProfileChanged, "user.profile_changed"), (storage.Profile,)),
    "index_presence": Projection(index_presence, typed(PresenceChanged, "user.presence_changed"), (storage.Profile,)),
    "copy_members": Projection(copy_members, ROOM_CHANGES, (storage.MembersDoc,)),
}

MIRRORS = {"memberships": MEMBERSHIPS}
