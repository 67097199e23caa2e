"""The users worker: directory, sign-ins and presence, through the real pipeline on the Mongo stand-in."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from support.handlers import event, harness, replica

from contracts.events import MemberJoined, MemberLeft, RoomCreated, RoomInfo
from contracts.routing import room_key, user_key
from workers.users import storage
from workers.users.app import WORKER


@pytest.fixture
async def users(mongo_url):
    return await harness(WORKER, mongo_url)


def profile(user_id: str, name: str, image_url: str | None = None) -> dict:
    return {"user": {"id": user_id, "name": name, "image_url": image_url}, "email": ""}


async def test_sign_in_keeps_the_last_profile(users):
    """The profile comes from the last sign-in; an unchanged one publishes nothing."""
    await users.ok("sign_in", "pat", profile("pat", "Pat"))
    await users.ok("sign_in", "pat", profile("pat", "Pat"))
    await users.ok("sign_in", "pat", profile("pat", "Patricia", "https://x.org/p.png"))
    assert (await users.ok("get_me", "pat"))["user"] == {
        "id": "pat",
        "name": "Patricia",
        "image_url": "https://x.org/p.png",
    }
    assert len(users.events("user.profile_changed")) == 2
    updates = [(d["key"], d["data"]["user"]["name"]) for d in users.sent("user.updated")]
    assert updates == [(user_key("pat"), "Pat"), (user_key("pat"), "Patricia")]  # in no room: the user alone


async def test_list_and_resolve_users(users):
    """list_users by name then id (version 1's ``{}``: everyone, no cursor); resolve_users returns the known ones."""
    for user_id, name in [("b2", "b"), ("a", "B"), ("b1", "b"), ("c", "a")]:
        await users.ok("sign_in", user_id, profile(user_id, name))
    listed = await users.ok("list_users", "a")
    assert [u["id"] for u in listed["users"]] == ["a", "c", "b1", "b2"] and listed["next_cursor"] is None
    assert [u["id"] for u in (await users.ok("resolve_users", "a", {"ids": ["c", "zed", "a"]}))["users"]] == ["a", "c"]
    assert await users.error("get_me", "zed") == "not_found"


async def test_presence_counts_connections_across_gateways(users):
    """Online with the first connection anywhere, offline after the last one closes."""
    await users.ok("sign_in", "pat", profile("pat", "Pat"))
    await users.ok("connection_opened", "pat", {"connection_id": "c1", "gateway_id": "g1"})
    await users.ok("connection_opened", "pat", {"connection_id": "c1", "gateway_id": "g2"})
    await users.ok("connection_opened", "pat", {"connection_id": "c1", "gateway_id": "g1"})  # again: no change
    assert (await users.ok("list_online_users", "pat"))["user_ids"] == ["pat"]
    await users.ok("connection_closed", "pat", {"connection_id": "c1", "gateway_id": "g1"})
    assert (await users.ok("list_online_users", "pat"))["user_ids"] == ["pat"]
    await users.ok("connection_closed", "pat", {"connection_id": "c1", "gateway_id": "g2"})
    assert (await users.ok("list_online_users", "pat"))["user_ids"] == []
    changes = [(d["data"]["online"], d["key"]) for d in users.sent("presence.changed")]
    assert changes == [(True, user_key("pat")), (False, user_key("pat"))]  # in no room: the user alone


async def test_connections_past_the_limit_are_rate_limited(users):
    """A user's connections are counted over every gateway; one past the limit is refused."""
    await users.ok("sign_in", "pat", profile("pat", "Pat"))
    limit = users.runtime.settings.max_connections_per_user
    for n in range(limit):
        await users.ok("connection_opened", "pat", {"connection_id": f"c{n}", "gateway_id": f"g{n % 2}"})
    assert await users.error("connection_opened", "pat", {"connection_id": "x", "gateway_id": "g0"}) == "rate_limited"
    await users.ok("connection_closed", "pat", {"connection_id": "c0", "gateway_id": "g0"})
    await users.ok("connection_opened", "pat", {"connection_id": "x", "gateway_id": "g0"})


# Who shares a room with whom ----------------------------------------------------------------------


def room(room_id: str, *member_ids: str) -> RoomInfo:
    return RoomInfo(
        id=room_id,
        name=room_id,
        image_url=None,
        participant_ids=list(member_ids),
        created_by=member_ids[0],
        created_at=datetime.now(UTC),
    )


async def rooms_say(users, type: str, payload, version: int) -> None:
    """The rooms worker's event, as the users worker's projection and mirror take it."""
    said = event(type, payload, aggregate_id=payload.room.id, version=version)
    await users.react("copy_members", said)
    await users.react("memberships", said)


async def created(users, room_id: str, *member_ids: str) -> None:
    await rooms_say(users, "room.created", RoomCreated(room=room(room_id, *member_ids), names={}), 1)


async def signed_in(users, *user_ids: str) -> None:
    for user_id in user_ids:
        await users.ok("sign_in", user_id, profile(user_id, user_id.title()))


async def connect(users, user_id: str, connection: str = "c1") -> None:
    await users.ok("connection_opened", user_id, {"connection_id": connection, "gateway_id": "g1"})


async def test_presence_goes_to_the_rooms_the_user_shares_once_per_change(users):
    """Ann's presence is sent to each of her rooms, with her own key riding on each; all of one
    change's deliveries share one id, so a user who shares three rooms with her is shown it once."""
    await signed_in(users, "ann", "bob", "cy")
    for room_id in ("r1", "r2", "r3"):
        await created(users, room_id, "ann", "bob")
    await created(users, "r4", "bob", "cy")
    await connect(users, "ann")
    sent = users.sent("presence.changed")
    rooms = [room_key(room_id) for room_id in ("r1", "r2", "r3")]  # not r4: cy shares no room with Ann
    assert sorted(d["key"] for d in sent) == sorted([*rooms, *[user_key("ann")] * 3])  # Ann's key rides on each
    assert len({d["id"] for d in sent}) == 1  # one delivery: a gateway drops its copies by this id


async def test_a_user_in_no_room_tells_only_themselves(users):
    """Presence and profile changes of a user who shares no room go to the user alone."""
    await signed_in(users, "ann")
    await connect(users, "ann")
    await users.ok("sign_in", "ann", profile("ann", "Annie"))
    assert [d["key"] for d in users.sent("presence.changed")] == [user_key("ann")]
    assert [d["key"] for d in users.sent("user.updated")] == [user_key("ann"), user_key("ann")]


async def test_leaving_a_room_stops_its_presence(users):
    """After room.member_left (and not before a late older event), the room hears no more of the leaver."""
    await signed_in(users, "ann", "bob")
    await created(users, "r1", "ann", "bob")
    await rooms_say(users, "room.member_left", MemberLeft(room=room("r1", "bob"), user_id="ann", user_name="Ann"), 3)
    joined = MemberJoined(
        room=room("r1", "ann", "bob"), user_id="bob", user_name="Bob", invited_by="ann", invited_by_name="Ann"
    )
    await rooms_say(users, "room.member_joined", joined, 2)  # late: changes nothing
    await connect(users, "ann")
    assert [d["key"] for d in users.sent("presence.changed")] == [user_key("ann")]
    assert (await users.ok("list_online_users", "bob"))["user_ids"] == []


async def test_list_online_users_lists_those_who_share_a_room(users):
    """The caller (if online) and the online users who share a room with them; nobody else."""
    await signed_in(users, "ann", "bob", "cy", "dee")
    await created(users, "r1", "ann", "bob")
    await created(users, "r2", "bob", "cy")
    for user_id in ("ann", "bob", "cy", "dee"):
        await connect(users, user_id)
    assert (await users.ok("list_online_users", "ann"))["user_ids"] == ["ann", "bob"]
    assert (await users.ok("list_online_users", "bob"))["user_ids"] == ["ann", "bob", "cy"]
    assert (await users.ok("list_online_users", "dee"))["user_ids"] == ["dee"]
    await users.ok("connection_closed", "ann", {"connection_id": "c1", "gateway_id": "g1"})
    assert (await users.ok("list_online_users", "ann"))["user_ids"] == ["bob"]


async def test_another_process_loads_the_memberships_from_its_copy(users):
    """A process started later routes by what the projection stored (replay rebuilds that)."""
    await signed_in(users, "ann", "bob")
    await created(users, "r1", "ann", "bob")
    twin = replica(users)
    await twin.reload()
    await twin.ok("connection_opened", "ann", {"connection_id": "c1", "gateway_id": "g1"})
    assert room_key("r1") in {d["key"] for d in twin.sent("presence.changed")}


async def test_a_newcomer_is_introduced_to_the_room(users):
    """On room.member_joined, the room learns the newcomer's profile and presence, and the newcomer's
    next change goes to the room (this process applied the join, whatever its mirror's queue says)."""
    await signed_in(users, "ann", "bob")
    await created(users, "r1", "ann")
    await connect(users, "bob")
    joined = MemberJoined(
        room=room("r1", "ann", "bob"), user_id="bob", user_name="Bob", invited_by="ann", invited_by_name="Ann"
    )
    await users.react("introduce_newcomer", event("room.member_joined", joined, aggregate_id="r1", version=2))
    assert [(d["key"], d["data"]["user"]["id"]) for d in users.sent("user.updated", room_key("r1"))] == [
        (room_key("r1"), "bob")
    ]
    assert [d["data"] for d in users.sent("presence.changed", room_key("r1"))] == [{"user_id": "bob", "online": True}]
    await users.ok("connection_closed", "bob", {"connection_id": "c1", "gateway_id": "g1"})
    assert [d["data"]["online"] for d in users.sent("presence.changed", room_key("r1"))] == [True, False]


# The directory ----------------------------------------------------------------------------------


async def test_list_users_pages_through_the_directory_by_name_then_id(users):
    """Pages of ``limit`` in version 1's order; the last page has no cursor; every user once."""
    names = ["bo", "Al", "bo", "Émile", "al", "Zed", "ann", "Bob"]
    for n, name in enumerate(names):
        await users.ok("sign_in", f"u{n}", profile(f"u{n}", name))
    everyone = [u["id"] for u in (await users.ok("list_users", "u0"))["users"]]
    paged, cursor = [], None
    while True:
        page = await users.ok("list_users", "u0", {"limit": 3, "cursor": cursor})
        assert len(page["users"]) <= 3
        paged += [u["id"] for u in page["users"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert paged == everyone and len(paged) == len(names)
    assert len((await users.ok("list_users", "u0", {"limit": 100}))["users"]) == len(names)


async def test_list_users_finds_names_holding_the_query_whatever_the_case(users):
    """A case-insensitive substring (a prefix too); regular expression characters are literal."""
    for user_id, name in [("a", "Anna"), ("b", "JOANNE"), ("c", "Bob"), ("d", "an.n"), ("e", "Hannah")]:
        await users.ok("sign_in", user_id, profile(user_id, name))
    found = await users.ok("list_users", "a", {"query": "ANN"})
    assert [u["name"] for u in found["users"]] == ["Anna", "Hannah", "JOANNE"] and found["next_cursor"] is None
    first = await users.ok("list_users", "a", {"query": "ann", "limit": 2})
    rest = await users.ok("list_users", "a", {"query": "ann", "limit": 2, "cursor": first["next_cursor"]})
    assert [u["id"] for u in first["users"] + rest["users"]] == ["a", "e", "b"] and rest["next_cursor"] is None
    assert [u["id"] for u in (await users.ok("list_users", "a", {"query": "n.n"}))["users"]] == ["d"]
    assert (await users.ok("list_users", "a", {"query": "zz"}))["users"] == []


async def test_list_users_refuses_what_it_cannot_read(users):
    """A foreign cursor, a limit or query out of bounds: bad_request."""
    await signed_in(users, "ann")
    for data in [{"cursor": "not-ours"}, {"limit": 0}, {"limit": 501}, {"query": ""}, {"query": "x" * 101}]:
        assert await users.error("list_users", "ann", data) == "bad_request"


async def test_directory_entries_from_before_paging_are_listed(users):
    """An entry written before v1.2 (no place in the directory) is given one by the chore."""
    await signed_in(users, "ann", "bob")
    await storage.Profile.get_pymongo_collection().update_one({"_id": "bob"}, {"$unset": {"order": "", "folded": ""}})
    assert [u["id"] for u in (await users.ok("list_users", "ann", {"limit": 10}))["users"]] == ["ann"]
    await users.worker.chores["list_unlisted"].run(users.runtime)
    assert [u["id"] for u in (await users.ok("list_users", "ann", {"query": "BO"}))["users"]] == ["bob"]


# Invites and device sessions ---------------------------------------------------------------------


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def dev(user_id: str, session_id: str, renew: bool = False, days: float = 90) -> dict:
    grant = {"id": session_id, "device": "Firefox", "expires_at": in_days(days)}
    return {**profile(user_id, user_id.title()), "session": grant, "renew": renew}


def newcomer(code: str, session_id: str) -> dict:
    user_id = f"invite:{uuid.uuid4().hex}"
    grant = {"id": session_id, "device": "Phone", "expires_at": in_days(90)}
    return {**profile(user_id, "Cy"), "session": grant, "invite": code}


async def test_an_invite_signs_newcomers_in_until_it_is_used_up(users):
    """create_invite answers a link; each newcomer becomes a user with a session; one past the
    last use is conflict and creates nothing; list_invites shows the uses."""
    invite = (await users.ok("create_invite", "ann", {"max_uses": 2, "expires_in": 3600}))["invite"]
    assert invite["link"] == f"{users.runtime.settings.public_base}/invite/{invite['code']}"
    assert (invite["uses"], invite["status"]) == (0, "active")
    first = newcomer(invite["code"], "s1")
    await users.ok("sign_in", first["user"]["id"], first)
    await users.ok("sign_in", first["user"]["id"], first)  # the same sign-in again takes no second use
    second = newcomer(invite["code"], "s2")
    await users.ok("sign_in", second["user"]["id"], second)
    third = newcomer(invite["code"], "s3")
    assert await users.error("sign_in", third["user"]["id"], third) == "conflict"
    assert await users.error("get_me", third["user"]["id"]) == "not_found"
    assert (await users.ok("list_sessions", first["user"]["id"]))["sessions"][0]["id"] == "s1"
    [listed] = (await users.ok("list_invites", "ann"))["invites"]
    assert (listed["uses"], listed["status"]) == (2, "used_up")
    assert (await users.ok("list_invites", "bob"))["invites"] == []


async def test_a_revoked_or_unknown_invite_creates_nothing(users):
    invite = (await users.ok("create_invite", "ann", {}))["invite"]
    assert await users.error("revoke_invite", "bob", {"code": invite["code"]}) == "not_found"
    await users.ok("revoke_invite", "ann", {"code": invite["code"]})
    late = newcomer(invite["code"], "s1")
    assert await users.error("sign_in", late["user"]["id"], late) == "forbidden"
    unknown = newcomer("no-such-code", "s2")
    assert await users.error("sign_in", unknown["user"]["id"], unknown) == "not_found"
    assert (await users.ok("list_users", "ann"))["users"] == []


async def test_two_newcomers_race_for_the_last_use(users):
    """Two replicas redeem the last use at once: one signs in, the other gets conflict."""
    invite = (await users.ok("create_invite", "ann", {"max_uses": 1}))["invite"]
    twin = replica(users)
    one, two = newcomer(invite["code"], "s1"), newcomer(invite["code"], "s2")
    replies = await asyncio.gather(
        users.command("sign_in", one["user"]["id"], one), twin.command("sign_in", two["user"]["id"], two)
    )
    assert sorted(reply.error.code if reply.error else "ok" for reply in replies) == ["conflict", "ok"]
    assert len((await users.ok("list_users", "ann"))["users"]) == 1


async def test_sessions_are_listed_renewed_and_revoked(users):
    """A renewed session slides; a revoked one is refused and its connections are told."""
    await users.ok("sign_in", "ann", dev("ann", "s1", days=1))
    await users.ok("sign_in", "ann", dev("ann", "s2"))
    await users.ok("sign_in", "ann", dev("ann", "s1", renew=True, days=90))
    listed = (await users.ok("list_sessions", "ann"))["sessions"]
    assert [s["id"] for s in listed] == ["s1", "s2"]
    assert listed[0]["expires_at"] > in_days(89)
    assert await users.error("revoke_session", "bob", {"session_id": "s1"}) == "not_found"
    await users.ok("revoke_session", "ann", {"session_id": "s1"})
    assert [d["data"] for d in users.sent("session.revoked", user_key("ann"))] == [{"session_id": "s1"}]
    assert await users.error("sign_in", "ann", dev("ann", "s1", renew=True)) == "unauthenticated"
    assert await users.error("sign_in", "bob", dev("bob", "s2", renew=True)) == "unauthenticated"
    assert await users.error("sign_in", "ann", dev("ann", "s9", renew=True)) == "unauthenticated"
    assert [s["id"] for s in (await users.ok("list_sessions", "ann"))["sessions"]] == ["s2"]


async def test_sign_out_everywhere_but_here(users):
    for session_id in ("s1", "s2", "s3"):
        await users.ok("sign_in", "ann", dev("ann", session_id))
    once = str(uuid.uuid4())
    assert await users.ok("revoke_sessions", "ann", {"keep": "s2"}, id=once) == {"session_ids": ["s1", "s3"]}
    assert await users.ok("revoke_sessions", "ann", {"keep": "s2"}, id=once) == {"session_ids": ["s1", "s3"]}
    assert [s["id"] for s in (await users.ok("list_sessions", "ann"))["sessions"]] == ["s2"]
    assert (await users.ok("revoke_sessions", "ann", {}))["session_ids"] == ["s2"]
    assert (await users.ok("list_sessions", "ann"))["sessions"] == []


async def test_a_google_account_keeps_its_bare_sub(users):
    """Before ids were namespaced a Google account was its sub: with the same email it stays so."""
    await users.ok("sign_in", "1234", {"user": {"id": "1234", "name": "Ann"}, "email": "ann@example.com"})
    google = {"user": {"id": "google:1234", "name": "Ann"}, "email": "ann@example.com", "legacy_id": "1234"}
    assert await users.ok("sign_in", "google:1234", google) == {"user_id": "1234"}
    other = {"user": {"id": "google:99", "name": "Eve"}, "email": "eve@example.com", "legacy_id": "1234"}
    assert await users.ok("sign_in", "google:99", other) == {"user_id": None}


async def test_the_operator_invites_the_first_person_only_while_nobody_is_here(users):
    first = (await users.ok("operator_invite", "boochat", {"only_without_users": True}))["invite"]
    assert first["status"] == "active"
    await users.ok("sign_in", "ann", profile("ann", "Ann"))
    assert (await users.ok("operator_invite", "boochat", {"only_without_users": True}))["invite"] is None
    assert (await users.ok("operator_invite", "boochat", {"max_uses": 3}))["invite"]["max_uses"] == 3
