"""The users worker: directory, sign-ins and presence, through the real pipeline on the Mongo stand-in."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from support.handlers import harness, replica

from contracts.routing import EVERYONE, user_key
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
    assert updates == [(EVERYONE, "Pat"), (EVERYONE, "Patricia")]


async def test_list_and_resolve_users(users):
    """list_users by name then id; resolve_users returns the known ones."""
    for user_id, name in [("b2", "b"), ("a", "B"), ("b1", "b"), ("c", "a")]:
        await users.ok("sign_in", user_id, profile(user_id, name))
    assert [u["id"] for u in (await users.ok("list_users", "a"))["users"]] == ["a", "c", "b1", "b2"]
    assert [u["id"] for u in (await users.ok("resolve_users", "a", {"ids": ["c", "zed", "a"]}))["users"]] == ["a", "c"]
    assert await users.error("get_me", "zed") == "not_found"


async def test_presence_counts_connections_across_gateways(users):
    """Online with the first connection anywhere, offline after the last one closes."""
    await users.ok("sign_in", "pat", profile("pat", "Pat"))
    await users.ok("connection_opened", "pat", {"connection_id": "c1", "gateway_id": "g1"})
    await users.ok("connection_opened", "pat", {"connection_id": "c1", "gateway_id": "g2"})
    await users.ok("connection_opened", "pat", {"connection_id": "c1", "gateway_id": "g1"})  # again: no change
    assert (await users.ok("list_online_users", "x"))["user_ids"] == ["pat"]
    await users.ok("connection_closed", "pat", {"connection_id": "c1", "gateway_id": "g1"})
    assert (await users.ok("list_online_users", "x"))["user_ids"] == ["pat"]
    await users.ok("connection_closed", "pat", {"connection_id": "c1", "gateway_id": "g2"})
    assert (await users.ok("list_online_users", "x"))["user_ids"] == []
    changes = [(d["data"]["online"], d["key"]) for d in users.sent("presence.changed")]
    assert changes == [(True, EVERYONE), (False, EVERYONE)]


async def test_connections_past_the_limit_are_rate_limited(users):
    """A user's connections are counted over every gateway; one past the limit is refused."""
    await users.ok("sign_in", "pat", profile("pat", "Pat"))
    limit = users.runtime.settings.max_connections_per_user
    for n in range(limit):
        await users.ok("connection_opened", "pat", {"connection_id": f"c{n}", "gateway_id": f"g{n % 2}"})
    assert await users.error("connection_opened", "pat", {"connection_id": "x", "gateway_id": "g0"}) == "rate_limited"
    await users.ok("connection_closed", "pat", {"connection_id": "c0", "gateway_id": "g0"})
    await users.ok("connection_opened", "pat", {"connection_id": "x", "gateway_id": "g0"})


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
