"""Presence and profile changes reach those who share a room with the user (v1.2), through the gateway.

The negatives are proven with barriers, not waits: the users worker publishes in order on one
channel, and the gateway relays its queue in order, so once a client has a later event of the users
worker's, an earlier one meant for it would have come first.
"""

from __future__ import annotations

import uuid

from support.client import Client

from e2e.helpers import make_room


def about(user: dict, online: bool | None = None):
    """A predicate on presence.changed / user.updated data: about ``user`` (and ``online``)."""

    def matches(data: dict) -> bool:
        user_id = data["user"]["id"] if "user" in data else data["user_id"]
        return user_id == user["id"] and (online is None or data["online"] is online)

    return matches


async def renamed(connect, client: Client, name: str) -> dict:
    """``client``'s user signs in again with a new name; the new profile (the user's own user.updated,
    a barrier for what the users worker published before it, has been read by ``client``)."""
    profile = {**client.user, "name": name}
    await connect(as_user=profile)
    await client.expect_event("user.updated", lambda d: d["user"]["id"] == profile["id"] and d["user"]["name"] == name)
    return profile


async def test_presence_and_profiles_reach_only_those_who_share_a_room_once_each(connect):
    """Bob shares three rooms with Ann: each of her changes reaches him once. Sam shares none with her
    (only a room with Bob): he gets none of them."""
    ann, bob, sam = await connect("Ann"), await connect("Bob"), await connect("Sam")
    for name in ("One", "Two", "Three"):
        await make_room(bob, ann, name=name)
    await make_room(bob, sam, name="Bob and Sam")
    assert ann.user["id"] in (await bob.ok("list_online_users"))["user_ids"]

    await ann.close()
    await bob.expect_event("presence.changed", about(ann.user, online=False))
    ann_again = await connect(as_user=ann.user)
    await bob.expect_event("presence.changed", about(ann.user, online=True))  # after every copy of offline
    assert bob.pending("presence.changed", about(ann.user)) == []
    ann_renamed = await renamed(connect, ann_again, "Ann B.")
    await bob.expect_event("user.updated", lambda d: d["user"] == {**ann_renamed, "image_url": None})
    assert bob.pending("presence.changed", about(ann.user)) == []  # every copy of online came before

    await renamed(connect, sam, "Sam B.")  # to Bob too (they share a room): after all of Ann's
    await bob.expect_event("user.updated", about(sam.user))
    assert bob.pending("user.updated", about(ann.user)) == []
    assert sam.pending("presence.changed", about(ann.user)) == []
    assert sam.pending("user.updated", about(ann.user)) == []


async def test_a_user_in_no_room_is_told_of_their_own_changes_only(connect):
    """Nobody else hears of a user who shares no room; the user's own connections do."""
    other = await connect("Other")
    loner = await connect("Loner")  # online: told to the loner alone
    second = await connect(as_user=loner.user)
    await second.close()  # not the last connection: no presence change
    profile = await renamed(connect, loner, "Loner B.")
    await renamed(connect, other, "Other B.")  # a barrier for Other: after the loner's change
    assert other.pending("user.updated", about(profile)) == []
    assert other.pending("presence.changed", about(profile)) == []


async def test_list_online_users_lists_those_who_share_a_room(connect):
    """The caller and the online users who share a room with them, nobody else."""
    ann, bob, sam = await connect("Ann"), await connect("Bob"), await connect("Sam")
    await make_room(ann, bob)
    assert set((await ann.ok("list_online_users"))["user_ids"]) == {ann.user["id"], bob.user["id"]}
    assert (await sam.ok("list_online_users"))["user_ids"] == [sam.user["id"]]
    await bob.close()
    await ann.expect_event("presence.changed", about(bob.user, online=False))
    assert (await ann.ok("list_online_users"))["user_ids"] == [ann.user["id"]]


async def test_a_newcomer_and_the_room_learn_of_each_other(connect):
    """Joining a room: its members are told the newcomer's profile and presence; the newcomer asks
    list_online_users after room.member_joined (PROTOCOL.md) and finds the online members."""
    ann, bob, cy = await connect("Ann"), await connect("Bob"), await connect("Cy")
    room = await make_room(ann, bob)
    await ann.ok("invite_to_room", {"room_id": room["id"], "user_id": cy.user["id"]})
    await cy.expect_event("room.member_joined", lambda d: d["room_id"] == room["id"] and d["user_id"] == cy.user["id"])
    online = set((await cy.ok("list_online_users"))["user_ids"])
    assert online == {ann.user["id"], bob.user["id"], cy.user["id"]}
    for member in (ann, bob):
        await member.expect_event("user.updated", about(cy.user))
        await member.expect_event("presence.changed", about(cy.user, online=True))
    await cy.close()
    await bob.expect_event("presence.changed", about(cy.user, online=False))


async def test_list_users_pages_and_searches_by_name(connect):
    """Pages of ``limit`` by name then id, each user once; ``query`` is a case-insensitive part of
    the name; version 1's ``{}`` still lists everyone at once."""
    tag = uuid.uuid4().hex[:8]
    names = [f"{tag} b", f"{tag} B", f"{tag} a", f"{tag} a", f"x{tag.upper()} c"]
    clients = [await connect(name) for name in names]
    everyone = await clients[0].ok("list_users")
    assert everyone["next_cursor"] is None
    expected = [u for u in everyone["users"] if tag in u["name"].lower()]
    assert len(expected) == len(names)
    paged, cursor = [], None
    while True:
        page = await clients[0].ok("list_users", {"query": tag.upper(), "limit": 2, "cursor": cursor})
        assert len(page["users"]) <= 2
        paged += page["users"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert paged == expected
    assert [u["name"] for u in (await clients[0].ok("list_users", {"query": f"{tag} A"}))["users"]] == [f"{tag} a"] * 2
    error = await clients[0].error("list_users", {"cursor": "not a cursor"})
    assert error["code"] == "bad_request"
