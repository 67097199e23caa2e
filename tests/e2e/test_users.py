"""Users and presence through the gateway."""

from __future__ import annotations

import uuid

from support.client import Client

from e2e.helpers import make_room


async def test_get_me_and_profile_from_the_last_sign_in(connect, stack):
    """get_me answers the profile of the last sign-in; a new sign-in updates name and picture."""
    alice = await connect("Alice")
    assert (await alice.ok("get_me"))["user"] == {"id": alice.user["id"], "name": "Alice", "image_url": None}
    renamed = {"id": alice.user["id"], "name": "Alice B.", "image_url": "https://img.example/alice.png"}
    again = await connect(as_user=renamed)
    assert again.user == renamed
    assert (await alice.ok("get_me"))["user"] == renamed


async def test_list_users_by_name_then_id(connect):
    """list_users orders by name in code point order, then by id."""
    tag = uuid.uuid4().hex[:6]
    names = [f"{tag} b", f"{tag} B", f"{tag} a", f"{tag} a"]
    clients = [await connect(name) for name in names]
    listed = [u for u in (await clients[0].ok("list_users"))["users"] if u["name"].startswith(tag)]
    assert [u["name"] for u in listed] == sorted(names)
    twins = [u["id"] for u in listed if u["name"] == f"{tag} a"]
    assert twins == sorted(twins)


async def test_presence_counts_connections(connect, stack):
    """Online with the first connection, offline after the last; those who share a room are told."""
    watcher = await connect("Watcher")
    profile = {"id": f"pat-{uuid.uuid4().hex[:8]}", "name": "Pat"}
    first = await Client.connect(stack.ws_url, dev_user=profile)
    await make_room(watcher, first)
    second = await Client.connect(stack.ws_url, dev_user=profile)
    await first.close()  # not the last: nothing changes
    assert profile["id"] in (await watcher.ok("list_online_users"))["user_ids"]
    await second.close()
    offline = await watcher.expect_event("presence.changed", lambda d: d["user_id"] == profile["id"])
    assert offline["online"] is False
    assert profile["id"] not in (await watcher.ok("list_online_users"))["user_ids"]
    async with await Client.connect(stack.ws_url, dev_user=profile):
        online = await watcher.expect_event("presence.changed", lambda d: d["user_id"] == profile["id"])
        assert online["online"] is True  # so the first close sent nothing (the users worker sends in order)
        assert profile["id"] in (await watcher.ok("list_online_users"))["user_ids"]


async def test_those_who_share_a_room_learn_of_changed_profiles(connect, stack):
    """user.updated reaches those who share a room with the user, the user too: a new name or picture."""
    watcher = await connect("Watcher")
    profile = {"id": f"neo-{uuid.uuid4().hex[:8]}", "name": "Neo"}
    neo = await connect(as_user=profile)
    await make_room(neo, watcher)
    renamed = {"id": profile["id"], "name": "Neo A.", "image_url": "https://img.example/neo.png"}
    await connect(as_user=renamed)
    for client in (watcher, neo):
        assert await client.expect_event("user.updated", lambda d: d["user"]["id"] == profile["id"]) == {
            "user": renamed
        }
    await connect(as_user=renamed)  # the same profile again: nobody is told
    again = {**renamed, "name": "Neo B."}
    await connect(as_user=again)
    assert await watcher.expect_event("user.updated", lambda d: d["user"]["id"] == profile["id"]) == {"user": again}
