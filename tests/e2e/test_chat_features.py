"""Everyday chat through the gateway (PROTOCOL.md, Everyday chat, v1.2): replies, reactions, edits,
deletes, mentions, notification levels and renames, with real WebSocket clients; catching up after a
disconnection; every refusal; retries; and a replay that rebuilds the items' states."""

from __future__ import annotations

import uuid

from support.broker import wait_until_idle
from support.client import Client

from e2e.helpers import announced, make_room, new_user
from e2e.test_replay import drop, replay, snapshot


def changed(room_id: str, seq: int, kind: str):
    """Matches a ``room.item_changed`` of the item at ``seq`` made by a change of ``kind``."""
    return lambda d: d["item"]["room_id"] == room_id and d["item"]["seq"] == seq and d["change"]["kind"] == kind


async def test_reply_react_edit_delete_reach_every_member(connect):
    """Each change reaches the room as room.item_changed (never room.item_added), with the item as it
    now is and the change entry; a reply quotes, and follows, its original."""
    ann, bob = await connect("Ann"), await connect("Bob")
    room = await make_room(ann, bob)
    rid = room["id"]
    first = (await bob.ok("send_message", {"room_id": rid, "content": "Lunch at noon?"}))["item"]
    reply = (await ann.ok("send_message", {"room_id": rid, "content": "Yes!", "reply_to": first["seq"]}))["item"]
    assert reply["reply_to"]["excerpt"] == "Lunch at noon?" and reply["reply_to"]["sender_id"] == bob.user["id"]
    got = await bob.expect_event("room.item_added", lambda d: d["item"]["id"] == reply["id"])
    assert got["item"] == reply

    reacted = (await ann.ok("add_reaction", {"room_id": rid, "seq": first["seq"], "emoji": "👍"}))["item"]
    assert reacted["reactions"] == [{"emoji": "👍", "user_ids": [ann.user["id"]]}]
    seen = await bob.expect_event("room.item_changed", changed(rid, first["seq"], "reaction_added"))
    assert seen["item"] == reacted and seen["change"]["sender_id"] == ann.user["id"]
    assert seen["change"]["seq"] > reply["seq"] and seen["change"]["emoji"] == "👍"

    edited = (await bob.ok("edit_message", {"room_id": rid, "seq": first["seq"], "content": "Lunch at one?"}))["item"]
    assert edited["content"] == "Lunch at one?" and edited["reactions"] == reacted["reactions"]
    await ann.expect_event("room.item_changed", changed(rid, first["seq"], "edit"))
    quoting = await ann.expect_event("room.item_changed", changed(rid, reply["seq"], "edit"))
    assert quoting["item"]["reply_to"]["edited"] is True and quoting["item"]["reply_to"]["excerpt"] == "Lunch at noon?"
    history = await ann.ok("get_item_history", {"room_id": rid, "seq": first["seq"]})
    assert [v["content"] for v in history["versions"]] == ["Lunch at noon?", "Lunch at one?"]

    tomb = (await bob.ok("delete_message", {"room_id": rid, "seq": first["seq"]}))["item"]
    assert (tomb["content"], tomb["reactions"], tomb["deleted_at"] is not None) == ("", [], True)
    for client in (ann, bob):
        gone = await client.expect_event("room.item_changed", changed(rid, first["seq"], "delete"))
        assert gone["item"] == tomb
        requoted = await client.expect_event("room.item_changed", changed(rid, reply["seq"], "delete"))
        assert requoted["item"]["reply_to"]["excerpt"] == "" and requoted["item"]["reply_to"]["deleted"] is True
    assert (await ann.ok("get_item_history", {"room_id": rid, "seq": first["seq"]}))["versions"] == []
    await ann.sync()
    assert not ann.pending("room.item_added", lambda d: d["item"]["seq"] > reply["seq"])

    [summary] = [s for s in (await ann.ok("list_rooms", {}))["rooms"] if s["room"]["id"] == rid]
    assert summary["last_item"]["id"] == reply["id"] and summary["unread_count"] == 0


async def test_catching_up_after_a_disconnection(connect, stack):
    """Bob goes away; Ann reacts, edits and deletes; Bob, back, asks for what came after the last seq
    he saw, with_changes, and learns every change, with the items they changed."""
    ann, bob = await connect("Ann"), await connect("Bob")
    room = await make_room(ann, bob)
    rid = room["id"]
    one = (await ann.ok("send_message", {"room_id": rid, "content": "one"}))["item"]
    two = (await ann.ok("send_message", {"room_id": rid, "content": "two"}))["item"]
    await bob.expect_event("room.item_added", lambda d: d["item"]["id"] == two["id"])
    assert (await bob.ok("mark_room_read", {"room_id": rid}))["last_read_seq"] == two["seq"]
    profile = bob.user
    await bob.close()

    await ann.ok("add_reaction", {"room_id": rid, "seq": one["seq"], "emoji": "🎉"})
    await ann.ok("edit_message", {"room_id": rid, "seq": two["seq"], "content": "two, edited"})
    await ann.ok("delete_message", {"room_id": rid, "seq": one["seq"]})
    three = (await ann.ok("send_message", {"room_id": rid, "content": "three"}))["item"]

    back = await Client.connect(stack.ws_url, dev_user=profile)
    try:
        plain = await back.ok("get_room_items", {"room_id": rid, "after_seq": two["seq"]})
        assert [i["id"] for i in plain["items"]] == [three["id"]] and plain.get("targets") is None
        caught = await back.ok("get_room_items", {"room_id": rid, "after_seq": two["seq"], "with_changes": True})
        assert [(i["kind"], i["target_seq"]) for i in caught["items"]] == [
            ("reaction_added", one["seq"]),
            ("edit", two["seq"]),
            ("delete", one["seq"]),
            ("message", None),
        ]
        targets = {t["seq"]: t for t in caught["targets"]}
        assert targets[one["seq"]]["deleted_at"] is not None and targets[one["seq"]]["content"] == ""
        assert targets[two["seq"]]["content"] == "two, edited" and targets[two["seq"]]["edited_at"] is not None
        assert caught["items"][1]["content"] == "two, edited"
        [summary] = [s for s in (await back.ok("list_rooms", {}))["rooms"] if s["room"]["id"] == rid]
        assert summary["unread_count"] == 1, "only Ann's new message: change entries never count"
        assert summary["room"]["last_seq"] == three["seq"]
    finally:
        await back.close()


async def test_every_refusal(connect):
    """Someone else's message, an announcement, a deleted item, a bad emoji, a stranger mentioned,
    a change entry named: each refused with its code, and nothing changes."""
    ann, bob, cy = await connect("Ann"), await connect("Bob"), await connect("Cy")
    room = await make_room(ann, bob)
    rid = room["id"]
    first = (await bob.ok("send_message", {"room_id": rid, "content": "mine"}))["item"]
    created = 1  # the room's announcement

    assert (await ann.error("edit_message", {"room_id": rid, "seq": first["seq"], "content": "x"}))[
        "code"
    ] == "forbidden"
    assert (await cy.error("edit_message", {"room_id": rid, "seq": first["seq"], "content": "x"}))[
        "code"
    ] == "forbidden"
    assert (await bob.error("edit_message", {"room_id": rid, "seq": created, "content": "x"}))["code"] == "conflict"
    assert (await bob.error("edit_message", {"room_id": rid, "seq": 999, "content": "x"}))["code"] == "not_found"
    assert (await bob.error("delete_message", {"room_id": rid, "seq": created}))["code"] == "conflict"
    own = (await ann.ok("send_message", {"room_id": rid, "content": "ann's"}))["item"]
    assert (await bob.error("delete_message", {"room_id": rid, "seq": own["seq"]}))["code"] == "forbidden"

    long = "👍" * 9  # 36 bytes of UTF-8
    for emoji in (long, "a b", ""):
        refused = await ann.error("add_reaction", {"room_id": rid, "seq": first["seq"], "emoji": emoji})
        assert refused["code"] == "bad_request" and "data.emoji" in refused["details"]
    mention = await bob.error("send_message", {"room_id": rid, "content": "hi", "mentions": [cy.user["id"]]})
    assert mention["code"] == "bad_request" and mention["details"] == {
        "data.mentions": f"not members of this room: {cy.user['id']}"
    }
    react = (await ann.ok("add_reaction", {"room_id": rid, "seq": first["seq"], "emoji": "👀"}))["item"]
    entry_seq = (await ann.ok("get_room", {"room_id": rid}))["room"]["last_seq"]
    named = await ann.error("add_reaction", {"room_id": rid, "seq": entry_seq, "emoji": "👍"})
    assert named["code"] == "bad_request" and named["details"] == {
        "data.seq": "names a change entry, not a message or announcement"
    }

    await bob.ok("delete_message", {"room_id": rid, "seq": first["seq"]})
    for type in ("add_reaction", "remove_reaction"):
        deleted = await ann.error(type, {"room_id": rid, "seq": first["seq"], "emoji": "👀"})
        assert deleted["code"] == "bad_request" and deleted["details"] == {"data.seq": "the item is deleted"}
    assert (await bob.error("edit_message", {"room_id": rid, "seq": first["seq"], "content": "x"}))[
        "code"
    ] == "conflict"
    quoting = await ann.error("send_message", {"room_id": rid, "content": "?", "reply_to": first["seq"]})
    assert quoting["code"] == "bad_request"
    page = await ann.ok("get_room_items", {"room_id": rid, "after_seq": 0, "with_changes": True})
    assert [i["kind"] for i in page["items"]] == ["announcement", "message", "message", "reaction_added", "delete"]
    assert react["seq"] == first["seq"]


async def test_retries_of_each_new_command_act_once(connect):
    """The same id again, even with other data, gets the first outcome; the room sees one change."""
    ann, bob = await connect("Ann"), await connect("Bob")
    room = await make_room(ann, bob)
    rid = room["id"]
    first = (await bob.ok("send_message", {"room_id": rid, "content": "hello"}))["item"]
    steps = [
        (ann, "add_reaction", {"room_id": rid, "seq": first["seq"], "emoji": "👋"}),
        (ann, "remove_reaction", {"room_id": rid, "seq": first["seq"], "emoji": "👋"}),
        (bob, "edit_message", {"room_id": rid, "seq": first["seq"], "content": "hello there"}),
        (ann, "set_room_notifications", {"room_id": rid, "level": "mentions"}),
        (bob, "delete_message", {"room_id": rid, "seq": first["seq"]}),
    ]
    for client, type, data in steps:
        id = str(uuid.uuid4())
        once = await client.request(type, data, id=id)
        twice = await client.request(type, data, id=id)
        assert once["type"] == "ok" and twice == once, type
    refused_id = str(uuid.uuid4())
    refused = await ann.request("add_reaction", {"room_id": rid, "seq": first["seq"], "emoji": "👋"}, id=refused_id)
    again = await ann.request("add_reaction", {"room_id": rid, "seq": 1, "emoji": "👋"}, id=refused_id)
    assert refused["type"] == "error" and again == refused
    page = await ann.ok("get_room_items", {"room_id": rid, "after_seq": first["seq"], "with_changes": True})
    assert [i["kind"] for i in page["items"]] == ["reaction_added", "reaction_removed", "edit", "delete"]
    await ann.sync()
    assert len(ann.pending("room.notifications_changed", lambda d: d["room_id"] == rid)) == 1


async def test_mentions_and_notification_levels(connect):
    """list_rooms counts the user's unread mentions (not deleted ones) and shows their level, which
    only its owner's connections hear about, and only when it changes."""
    ann, bob, cy = await connect("Ann"), await connect("Bob"), await connect("Cy")
    room = await make_room(ann, bob, cy)
    rid = room["id"]
    ann2 = await connect(as_user=ann.user)
    await bob.ok("send_message", {"room_id": rid, "content": "@Ann look", "mentions": [ann.user["id"]]})
    everyone = (await cy.ok("send_message", {"room_id": rid, "content": "@room hi", "mentions_room": True}))["item"]
    await cy.ok("send_message", {"room_id": rid, "content": "@Bob", "mentions": [bob.user["id"]]})
    [summary] = [s for s in (await ann.ok("list_rooms", {}))["rooms"] if s["room"]["id"] == rid]
    assert (summary["mention_count"], summary["unread_count"], summary["notifications"]) == (2, 3, "all")
    await cy.ok("delete_message", {"room_id": rid, "seq": everyone["seq"]})
    [summary] = [s for s in (await ann.ok("list_rooms", {}))["rooms"] if s["room"]["id"] == rid]
    assert summary["mention_count"] == 1

    await ann.ok("set_room_notifications", {"room_id": rid, "level": "none"})
    for client in (ann, ann2):
        assert await client.expect_event("room.notifications_changed") == {"room_id": rid, "level": "none"}
    await ann.ok("set_room_notifications", {"room_id": rid, "level": "none"})
    await bob.sync()
    await ann.sync()
    assert not ann.pending("room.notifications_changed") and not bob.pending("room.notifications_changed")
    [summary] = [s for s in (await ann.ok("list_rooms", {}))["rooms"] if s["room"]["id"] == rid]
    assert summary["notifications"] == "none"
    await ann.ok("mark_room_read", {"room_id": rid})
    [summary] = [s for s in (await ann.ok("list_rooms", {}))["rooms"] if s["room"]["id"] == rid]
    assert (summary["mention_count"], summary["unread_count"]) == (0, 0)


async def test_a_rename_is_announced(connect):
    ann, bob = await connect("Ann"), await connect("Bob")
    room = await make_room(ann, bob)
    await bob.ok("rename_room", {"room_id": room["id"], "name": "Attic"})
    item = await announced(ann, room["id"], "renamed the room")
    assert item["content"] == "Bob renamed the room to Attic"
    await ann.ok("change_room_image", {"room_id": room["id"], "image_url": "https://example.com/a.png"})
    await ann.expect_event("room.updated", lambda d: d["room"]["image_url"] is not None)
    page = await ann.ok("get_room_items", {"room_id": room["id"], "after_seq": 0})
    assert [i["content"] for i in page["items"]][1:] == ["Bob renamed the room to Attic"]


async def test_replay_rebuilds_the_items_states(start_stack, mongo_url):
    """Write, reply, edit, react, delete; replay messaging from the log: its read models (the items'
    states with them) and every page with changes are as they were."""
    stack = await start_stack()
    ann, bob = [await Client.connect(stack.ws_url, dev_user=new_user(n)) for n in ("Ann", "Bob")]
    try:
        room = await make_room(ann, bob)
        rid = room["id"]
        first = (await bob.ok("send_message", {"room_id": rid, "content": "draft"}))["item"]
        reply = (await ann.ok("send_message", {"room_id": rid, "content": "re", "reply_to": first["seq"]}))["item"]
        await bob.ok("edit_message", {"room_id": rid, "seq": first["seq"], "content": "final"})
        await ann.ok("add_reaction", {"room_id": rid, "seq": first["seq"], "emoji": "👍"})
        await ann.ok("add_reaction", {"room_id": rid, "seq": reply["seq"], "emoji": "🙂"})
        second = (await bob.ok("send_message", {"room_id": rid, "content": "oops"}))["item"]
        await bob.ok("edit_message", {"room_id": rid, "seq": second["seq"], "content": "oops!"})
        await bob.ok("delete_message", {"room_id": rid, "seq": second["seq"]})
        before = await ann.ok("get_room_items", {"room_id": rid, "after_seq": 0, "with_changes": True})
        await wait_until_idle(stack.settings.namespace)

        database = stack.settings.names.database("messaging")
        live = await snapshot(mongo_url, database, ["item_states"])
        assert len(live["item_states"]) == 3, "the two messages changed and the reply whose quote changed"
        await drop(mongo_url, database, ["item_states"])
        output = await replay(stack.settings, "messaging")
        assert "caught up" in output
        assert await snapshot(mongo_url, database, ["item_states"]) == live
        after = await ann.ok("get_room_items", {"room_id": rid, "after_seq": 0, "with_changes": True})
        assert after == before
    finally:
        for client in (ann, bob):
            await client.close()
