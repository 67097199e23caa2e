"""The users worker: directory, sign-ins and presence, through the real pipeline on the Mongo stand-in."""

from __future__ import annotations

import pytest
from support.handlers import harness

from contracts.routing import EVERYONE
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
