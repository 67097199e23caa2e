"""Everyday chat in the messaging worker (PROTOCOL.md, Everyday chat): replies, reactions, edits,
deletes, mentions and notification levels, through the real pipeline on the Mongo stand-in."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.handlers import event
from support.rooms import hand_over, room_with

from contracts.events import RoomInfo, RoomUpdated
from contracts.routing import user_key
from workers.messaging import handlers
from workers.messaging.app import WORKER
from workers.messaging.storage import Item, ItemStateDoc


async def chat(messaging, *names: str):
    """Users in room ``r1``, the first its creator, and a first message from the second."""
    users = messaging.add_users(*names)
    await room_with(messaging, *users)
    first = (await messaging.ok("send_message", users[1], {"room_id": "r1", "content": "the original text"}))["item"]
    return users, first


async def stored_text(messaging, text: str) -> list[str]:
    """Where ``text`` is still stored in messaging's items and item states (document ids)."""
    found = []
    for model in (Item, ItemStateDoc):
        for raw in await model.get_pymongo_collection().find({}).to_list():
            if text in json.dumps(raw, default=str):
                found.append(f"{model.Settings.name}/{raw['_id']}")
    return found


async def page(messaging, user, **query: Any) -> dict:
    return await messaging.ok("get_room_items", user, {"room_id": "r1", "after_seq": 0, **query})


# Replies ----------------------------------------------------------------------------------------


async def test_a_reply_quotes_the_start_of_the_original(messaging):
    """The quote: id, seq, sender and the first 200 characters of the text as it is when replying."""
    (alice, bob), _ = await chat(messaging, "Alice", "Bob")
    long = (await messaging.ok("send_message", bob, {"room_id": "r1", "content": "x" * 300}))["item"]
    reply = await messaging.ok("send_message", alice, {"room_id": "r1", "content": "yes", "reply_to": long["seq"]})
    quoted = reply["item"]["reply_to"]
    assert quoted == {
        "id": long["id"],
        "seq": long["seq"],
        "sender_id": bob.id,
        "excerpt": "x" * 200,
        "edited": False,
        "deleted": False,
    }
    announcement = (await page(messaging, alice))["items"][0]
    to_it = await messaging.ok("send_message", alice, {"room_id": "r1", "content": "hm", "reply_to": 1})
    assert (
        to_it["item"]["reply_to"]["excerpt"] == announcement["content"]
        and to_it["item"]["reply_to"]["sender_id"] is None
    )


async def test_a_reply_to_nothing_a_change_or_a_deleted_message_is_refused(messaging):
    (alice, bob), first = await chat(messaging, "Alice", "Bob")
    assert (
        await messaging.error("send_message", alice, {"room_id": "r1", "content": "?", "reply_to": 99}) == "not_found"
    )
    react = await messaging.ok("add_reaction", alice, {"room_id": "r1", "seq": first["seq"], "emoji": "👍"})
    change_seq = react["item"]["seq"] + 1  # the reaction's entry follows the message
    reply = await messaging.command("send_message", alice, {"room_id": "r1", "content": "?", "reply_to": change_seq})
    assert reply.error is not None and reply.error.code == "bad_request"
    assert reply.error.details == {"data.reply_to": "names a change entry, not a message or announcement"}
    await messaging.ok("delete_message", bob, {"room_id": "r1", "seq": first["seq"]})
    reply = await messaging.command("send_message", alice, {"room_id": "r1", "content": "?", "reply_to": first["seq"]})
    assert reply.error is not None and reply.error.details == {"data.reply_to": "the item is deleted"}
    outsider = messaging.add_users("Olga")[0]
    assert (
        await messaging.error("send_message", outsider, {"room_id": "r1", "content": "?", "reply_to": 99})
        == "forbidden"
    )


# Reactions ----------------------------------------------------------------------------------------


async def test_reactions_are_change_entries_applied_to_their_item(messaging):
    """Each reaction added or removed is an entry with its own seq; clients get room.item_changed
    with the item as it now is; nothing counts as unread; a repeat changes nothing."""
    (alice, bob, cy), first = await chat(messaging, "Alice", "Bob", "Cy")
    seq = first["seq"]
    one = await messaging.ok("add_reaction", alice, {"room_id": "r1", "seq": seq, "emoji": "👍"})
    await messaging.ok("add_reaction", cy, {"room_id": "r1", "seq": seq, "emoji": "🎉"})
    two = await messaging.ok("add_reaction", cy, {"room_id": "r1", "seq": seq, "emoji": "👍"})
    assert one["item"]["reactions"] == [{"emoji": "👍", "user_ids": [alice.id]}]
    assert two["item"]["reactions"] == [
        {"emoji": "👍", "user_ids": [alice.id, cy.id]},
        {"emoji": "🎉", "user_ids": [cy.id]},
    ]
    again = await messaging.ok("add_reaction", alice, {"room_id": "r1", "seq": seq, "emoji": "👍"})
    assert again == two  # already held: no entry
    removed = await messaging.ok("remove_reaction", cy, {"room_id": "r1", "seq": seq, "emoji": "🎉"})
    assert removed["item"]["reactions"] == [{"emoji": "👍", "user_ids": [alice.id, cy.id]}]
    assert await messaging.ok("remove_reaction", cy, {"room_id": "r1", "seq": seq, "emoji": "🎉"}) == removed

    changes = messaging.events("room.item_changed")
    assert [(e["payload"]["change"]["kind"], e["payload"]["change"]["seq"]) for e in changes] == [
        ("reaction_added", seq + 1),
        ("reaction_added", seq + 2),
        ("reaction_added", seq + 3),
        ("reaction_removed", seq + 4),
    ]
    frames = messaging.sent("room.item_changed", "room.r1")
    assert frames[-1]["data"]["item"] == removed["item"] and frames[-1]["data"]["change"]["target_seq"] == seq
    assert frames[-1]["data"]["change"]["emoji"] == "🎉" and frames[-1]["data"]["change"]["sender_id"] == cy.id
    assert not messaging.sent("room.item_added", "room.r1")[2:], "no change entry is an item_added"

    v1 = await page(messaging, bob)
    assert [i["seq"] for i in v1["items"]] == [1, seq] and v1["items"][1] == removed["item"]
    [summary] = (await messaging.ok("list_rooms", alice))["rooms"]
    assert summary["last_item"] == removed["item"] and summary["unread_count"] == 1
    assert summary["room"]["last_seq"] == seq + 4


async def test_reactions_are_bounded_and_checked(messaging):
    """At most 20 emojis per item; a deleted item, an emoji of white space or too long: bad_request."""
    (alice, bob), first = await chat(messaging, "Alice", "Bob")
    seq = first["seq"]
    for n in range(20):
        await messaging.ok("add_reaction", alice, {"room_id": "r1", "seq": seq, "emoji": f"e{n}"})
    assert await messaging.error("add_reaction", bob, {"room_id": "r1", "seq": seq, "emoji": "new"}) == "conflict"
    await messaging.ok("add_reaction", bob, {"room_id": "r1", "seq": seq, "emoji": "e3"})  # one already there
    for emoji in ("a b", "x" * 33, "", "\n"):
        assert (
            await messaging.error("add_reaction", bob, {"room_id": "r1", "seq": seq, "emoji": emoji}) == "bad_request"
        )
    await messaging.ok("delete_message", bob, {"room_id": "r1", "seq": seq})
    for type in ("add_reaction", "remove_reaction"):
        reply = await messaging.command(type, alice, {"room_id": "r1", "seq": seq, "emoji": "e1"})
        assert reply.error is not None and reply.error.code == "bad_request"
        assert reply.error.details == {"data.seq": "the item is deleted"}
    assert await messaging.error("add_reaction", bob, {"room_id": "r1", "seq": 99, "emoji": "e1"}) == "not_found"


# Edits ------------------------------------------------------------------------------------------


async def test_an_edit_changes_the_text_and_keeps_its_history(messaging):
    (alice, bob), first = await chat(messaging, "Alice", "Bob")
    seq = first["seq"]
    reply = (await messaging.ok("send_message", alice, {"room_id": "r1", "content": "ok", "reply_to": seq}))["item"]
    edited = (await messaging.ok("edit_message", bob, {"room_id": "r1", "seq": seq, "content": "new text"}))["item"]
    assert edited["content"] == "new text" and edited["edited_at"] is not None and edited["id"] == first["id"]
    assert (await messaging.ok("edit_message", bob, {"room_id": "r1", "seq": seq, "content": "new text"}))[
        "item"
    ] == edited
    await messaging.ok("edit_message", bob, {"room_id": "r1", "seq": seq, "content": "newest"})
    history = await messaging.ok("get_item_history", alice, {"room_id": "r1", "seq": seq})
    assert [v["content"] for v in history["versions"]] == ["the original text", "new text", "newest"]
    assert history["versions"][0]["at"] == first["sent_at"]

    items = {i["seq"]: i for i in (await page(messaging, alice))["items"]}
    assert items[seq]["content"] == "newest"
    assert items[reply["seq"]]["reply_to"] == {**reply["reply_to"], "edited": True}  # the excerpt stays
    [quoting] = [f for f in messaging.sent("room.item_changed") if f["data"]["item"]["seq"] == reply["seq"]]
    assert quoting["data"]["change"]["kind"] == "edit" and quoting["data"]["item"]["reply_to"]["edited"] is True
    [first_edit, _] = messaging.events("room.item_changed")
    assert first_edit["payload"]["quoting"] == [reply["seq"]]


async def test_only_the_sender_edits_within_the_window(messaging):
    (alice, bob), first = await chat(messaging, "Alice", "Bob")
    seq = first["seq"]
    assert await messaging.error("edit_message", alice, {"room_id": "r1", "seq": seq, "content": "mine"}) == "forbidden"
    assert await messaging.error("edit_message", bob, {"room_id": "r1", "seq": 1, "content": "news"}) == "conflict"
    assert await messaging.error("edit_message", bob, {"room_id": "r1", "seq": 9, "content": "x"}) == "not_found"
    outsider = messaging.add_users("Olga")[0]
    assert await messaging.error("edit_message", outsider, {"room_id": "r1", "seq": seq, "content": "x"}) == "forbidden"
    later = datetime.now(UTC) + timedelta(seconds=messaging.runtime.settings.edit_window_seconds + 5)
    messaging.runtime.now = lambda: later  # type: ignore[method-assign]
    assert await messaging.error("edit_message", bob, {"room_id": "r1", "seq": seq, "content": "late"}) == "conflict"


# Deletes ----------------------------------------------------------------------------------------


async def test_a_delete_leaves_a_tombstone_and_erases_the_text_everywhere(messaging):
    """Content, reactions, mentions, quote and edit history gone, from answers and from storage; the
    replies quoting it lose their excerpt, each with a room.item_changed of its own."""
    (alice, bob), _ = await chat(messaging, "Alice", "Bob")
    secret = "a secret I regret"
    sent = await messaging.ok(
        "send_message", bob, {"room_id": "r1", "content": secret, "mentions": [alice.id], "reply_to": 1}
    )
    seq = sent["item"]["seq"]
    await messaging.ok("edit_message", bob, {"room_id": "r1", "seq": seq, "content": secret + " (edited)"})
    await messaging.ok("add_reaction", alice, {"room_id": "r1", "seq": seq, "emoji": "😮"})
    reply = (await messaging.ok("send_message", alice, {"room_id": "r1", "content": "why", "reply_to": seq}))["item"]
    await messaging.ok("add_reaction", bob, {"room_id": "r1", "seq": reply["seq"], "emoji": "🙈"})
    assert await stored_text(messaging, secret)

    tomb = (await messaging.ok("delete_message", bob, {"room_id": "r1", "seq": seq}))["item"]
    assert tomb["content"] == "" and tomb["deleted_at"] is not None and tomb["edited_at"] is None
    assert (tomb["reactions"], tomb["mentions"], tomb["reply_to"]) == ([], [], None)
    assert {k: tomb[k] for k in ("id", "seq", "kind", "sender_id", "sent_at")} == {
        k: sent["item"][k] for k in ("id", "seq", "kind", "sender_id", "sent_at")
    }
    assert await stored_text(messaging, secret) == []
    assert (await messaging.ok("get_item_history", alice, {"room_id": "r1", "seq": seq}))["versions"] == []
    items = {i["seq"]: i for i in (await page(messaging, alice, with_changes=True))["items"]}
    assert items[seq] == tomb
    assert items[reply["seq"]]["reply_to"]["deleted"] is True and items[reply["seq"]]["reply_to"]["excerpt"] == ""
    assert [i["content"] for i in items.values() if i["kind"] == "edit"] == [""]
    quoting = [f for f in messaging.sent("room.item_changed") if f["data"]["change"]["kind"] == "delete"]
    assert [f["data"]["item"]["seq"] for f in quoting] == [seq, reply["seq"]]
    assert len({f["id"] for f in quoting}) == 2, "each delivery its own id: a gateway keeps both"
    again = await messaging.ok(
        "delete_message", alice, {"room_id": "r1", "seq": seq}
    )  # the creator: nothing left to do
    assert again["item"] == tomb
    assert [e["payload"]["change"]["kind"] for e in messaging.events("room.item_changed")].count("delete") == 1
    assert await messaging.error("edit_message", bob, {"room_id": "r1", "seq": seq, "content": "back"}) == "conflict"


async def test_who_may_delete(messaging):
    """The sender, or the room's creator; not another member; never an announcement."""
    (alice, bob, cy), first = await chat(messaging, "Alice", "Bob", "Cy")
    assert await messaging.error("delete_message", cy, {"room_id": "r1", "seq": first["seq"]}) == "forbidden"
    assert await messaging.error("delete_message", alice, {"room_id": "r1", "seq": 1}) == "conflict"
    by_creator = await messaging.ok("delete_message", alice, {"room_id": "r1", "seq": first["seq"]})
    assert by_creator["item"]["deleted_at"] is not None
    own = (await messaging.ok("send_message", cy, {"room_id": "r1", "content": "mine"}))["item"]
    assert (await messaging.ok("delete_message", cy, {"room_id": "r1", "seq": own["seq"]}))["item"]["content"] == ""


async def test_missed_items_leave_out_deleted_messages_and_change_entries(messaging):
    (alice, bob), first = await chat(messaging, "Alice", "Bob")
    since = datetime.fromisoformat(first["sent_at"]) - timedelta(minutes=1)
    kept = (await messaging.ok("send_message", bob, {"room_id": "r1", "content": "kept"}))["item"]
    await messaging.ok("add_reaction", bob, {"room_id": "r1", "seq": kept["seq"], "emoji": "👍"})
    await messaging.ok("edit_message", bob, {"room_id": "r1", "seq": kept["seq"], "content": "kept!"})
    await messaging.ok("delete_message", bob, {"room_id": "r1", "seq": first["seq"]})
    reply = await messaging.ok("missed_items", alice, {"since": since.isoformat(), "delivered": {}})
    assert [i["added"]["item"]["seq"] for i in reply["items"]] == [1, kept["seq"]]  # the announcement, and kept


# Mentions and notification levels ------------------------------------------------------------------


async def test_mentions_are_members_and_counted_until_read(messaging):
    (alice, bob, cy), _ = await chat(messaging, "Alice", "Bob", "Cy")
    outsider = messaging.add_users("Olga")[0]
    reply = await messaging.command(
        "send_message", bob, {"room_id": "r1", "content": "hi", "mentions": [alice.id, outsider.id]}
    )
    assert reply.error is not None and reply.error.code == "bad_request"
    assert reply.error.details == {"data.mentions": f"not members of this room: {outsider.id}"}
    to_alice = await messaging.ok(
        "send_message", bob, {"room_id": "r1", "content": "a", "mentions": [alice.id, alice.id]}
    )
    assert to_alice["item"]["mentions"] == [alice.id]
    everyone = await messaging.ok("send_message", cy, {"room_id": "r1", "content": "all", "mentions_room": True})
    await messaging.ok("send_message", cy, {"room_id": "r1", "content": "just cy", "mentions": [bob.id]})
    summaries = {s["room"]["id"]: s for s in (await messaging.ok("list_rooms", alice))["rooms"]}
    assert (summaries["r1"]["mention_count"], summaries["r1"]["notifications"]) == (2, "all")
    await messaging.ok("delete_message", cy, {"room_id": "r1", "seq": everyone["item"]["seq"]})
    [summary] = (await messaging.ok("list_rooms", alice))["rooms"]
    assert summary["mention_count"] == 1
    await messaging.ok("mark_room_read", alice, {"room_id": "r1"})
    [summary] = (await messaging.ok("list_rooms", alice))["rooms"]
    assert (summary["mention_count"], summary["unread_count"]) == (0, 0)


async def test_mentioning_the_room_is_for_small_rooms(messaging):
    (alice, bob), _ = await chat(messaging, "Alice", "Bob")
    messaging.runtime.settings = messaging.runtime.settings.model_copy(update={"room_mention_max_members": 1})
    reply = await messaging.command("send_message", bob, {"room_id": "r1", "content": "all", "mentions_room": True})
    assert reply.error is not None and reply.error.details == {
        "data.mentions_room": "only in rooms of at most 1 members"
    }


async def test_notification_levels_are_told_when_they_change(messaging):
    (alice, _), _ = await chat(messaging, "Alice", "Bob")
    await messaging.ok("set_room_notifications", alice, {"room_id": "r1", "level": "mentions"})
    await messaging.ok("set_room_notifications", alice, {"room_id": "r1", "level": "mentions"})
    [told] = messaging.sent("room.notifications_changed", user_key(alice.id))
    assert told["data"] == {"room_id": "r1", "level": "mentions"}
    [set_] = messaging.events("room.notifications_set")
    assert set_["payload"] == {"room_id": "r1", "user_id": alice.id, "level": "mentions"}
    [summary] = (await messaging.ok("list_rooms", alice))["rooms"]
    assert summary["notifications"] == "mentions"
    assert await messaging.error("set_room_notifications", alice, {"room_id": "r1", "level": "loud"}) == "bad_request"
    outsider = messaging.add_users("Olga")[0]
    assert await messaging.error("set_room_notifications", outsider, {"room_id": "r1", "level": "none"}) == "forbidden"


# Catch-up, idempotency, healing, replay --------------------------------------------------------


async def test_catching_up_with_changes(messaging):
    """Without with_changes only messages and announcements, pages counted over them; with it every
    entry, and the items they changed that are not in the page."""
    (alice, bob), first = await chat(messaging, "Alice", "Bob")
    second = (await messaging.ok("send_message", alice, {"room_id": "r1", "content": "second"}))["item"]
    mark = second["seq"]
    await messaging.ok("add_reaction", alice, {"room_id": "r1", "seq": first["seq"], "emoji": "👍"})
    await messaging.ok("edit_message", alice, {"room_id": "r1", "seq": second["seq"], "content": "2nd"})
    third = (await messaging.ok("send_message", bob, {"room_id": "r1", "content": "third"}))["item"]
    await messaging.ok("delete_message", bob, {"room_id": "r1", "seq": first["seq"]})

    plain = await messaging.ok("get_room_items", alice, {"room_id": "r1", "after_seq": mark, "limit": 1})
    assert [i["seq"] for i in plain["items"]] == [third["seq"]] and plain["has_more"] is False
    assert "targets" not in plain or plain["targets"] is None
    newest = await messaging.ok("get_room_items", alice, {"room_id": "r1", "limit": 2})
    assert [i["seq"] for i in newest["items"]] == [second["seq"], third["seq"]] and newest["has_more"] is True

    caught = await messaging.ok("get_room_items", alice, {"room_id": "r1", "after_seq": mark, "with_changes": True})
    kinds = [(i["kind"], i["target_seq"]) for i in caught["items"]]
    assert kinds == [
        ("reaction_added", first["seq"]),
        ("edit", second["seq"]),
        ("message", None),
        ("delete", first["seq"]),
    ]
    targets = {t["seq"]: t for t in caught["targets"]}
    assert sorted(targets) == [first["seq"], second["seq"]]
    assert targets[first["seq"]]["deleted_at"] is not None and targets[second["seq"]]["content"] == "2nd"


async def test_each_new_command_acts_once_per_id(messaging):
    """A retry with the same id gets the first outcome and records nothing more, refusals included."""
    (alice, bob), first = await chat(messaging, "Alice", "Bob")
    seq = first["seq"]
    commands = [
        ("add_reaction", alice, {"room_id": "r1", "seq": seq, "emoji": "👍"}),
        ("remove_reaction", alice, {"room_id": "r1", "seq": seq, "emoji": "👍"}),
        ("edit_message", bob, {"room_id": "r1", "seq": seq, "content": "v2"}),
        ("set_room_notifications", alice, {"room_id": "r1", "level": "none"}),
        ("delete_message", bob, {"room_id": "r1", "seq": seq}),
    ]
    for type, user, data in commands:
        id = uuid.uuid4().hex
        once = await messaging.command(type, user, data, id=id)
        published = len(messaging.outbox.events)
        twice = await messaging.command(type, user, data, id=id)
        assert once.error is None and twice == once, type
        assert len(messaging.outbox.events) == published, type
    # after the delete, a reaction is refused; its retry is refused the same, as is one for other data
    id = uuid.uuid4().hex
    refused = await messaging.command("add_reaction", alice, {"room_id": "r1", "seq": seq, "emoji": "x"}, id=id)
    assert refused.error is not None and refused.error.code == "bad_request"
    other = await messaging.command("add_reaction", alice, {"room_id": "r1", "seq": 1, "emoji": "x"}, id=id)
    assert other == refused
    # a no-op is remembered too: the retry of an add that found the emoji held adds nothing later
    second = (await messaging.ok("send_message", bob, {"room_id": "r1", "content": "two"}))["item"]
    react = {"room_id": "r1", "seq": second["seq"], "emoji": "👍"}
    await messaging.ok("add_reaction", alice, react)
    noop_id = uuid.uuid4().hex
    await messaging.ok("add_reaction", alice, react, id=noop_id)
    await messaging.ok("remove_reaction", alice, react)
    retried = await messaging.ok("add_reaction", alice, react, id=noop_id)
    assert retried["item"]["reactions"] == []


async def test_a_change_stored_but_not_applied_heals_on_the_next_read(messaging, monkeypatch):
    """A crash between the entry's write and its item's state: the retry (or any change of the
    item) applies what is missing, once."""
    (alice, _), first = await chat(messaging, "Alice", "Bob")
    seq = first["seq"]
    real = handlers.apply

    async def crash(*args: Any) -> None:
        raise RuntimeError("the process stopped here")

    monkeypatch.setattr(handlers, "apply", crash)
    with pytest.raises(RuntimeError):
        await messaging.command("add_reaction", alice, {"room_id": "r1", "seq": seq, "emoji": "👍"}, id="r")
    monkeypatch.setattr(handlers, "apply", real)
    retried = await messaging.ok("add_reaction", alice, {"room_id": "r1", "seq": seq, "emoji": "👍"}, id="r")
    assert retried["item"]["reactions"] == [{"emoji": "👍", "user_ids": [alice.id]}]
    assert len(messaging.events("room.item_changed")) == 1
    again = await messaging.ok("add_reaction", alice, {"room_id": "r1", "seq": seq, "emoji": "👍"})
    assert again == retried


async def test_item_states_rebuilt_from_the_events_are_the_same(messaging):
    """The projection apply_changes, run over the published events again (as ``boochat replay``
    does) into an empty collection, rebuilds every item's state document as it was."""
    (alice, bob, cy), first = await chat(messaging, "Alice", "Bob", "Cy")
    seq = first["seq"]
    reply = (await messaging.ok("send_message", cy, {"room_id": "r1", "content": "re", "reply_to": seq}))["item"]
    await messaging.ok("edit_message", bob, {"room_id": "r1", "seq": seq, "content": "edited"})
    await messaging.ok("add_reaction", alice, {"room_id": "r1", "seq": reply["seq"], "emoji": "👍"})
    await messaging.ok("add_reaction", cy, {"room_id": "r1", "seq": seq, "emoji": "👍"})
    await messaging.ok("remove_reaction", cy, {"room_id": "r1", "seq": seq, "emoji": "👍"})
    await messaging.ok("delete_message", bob, {"room_id": "r1", "seq": seq})
    collection = ItemStateDoc.get_pymongo_collection()
    live = await collection.find({}).sort("_id", 1).to_list()
    before = await page(messaging, alice, with_changes=True)
    await collection.delete_many({})
    projection = WORKER.projections["apply_changes"]
    for published in messaging.events("room.item_changed"):
        await projection.run(event("room.item_changed", published["payload"], "r1", published["version"]))
    assert await collection.find({}).sort("_id", 1).to_list() == live
    assert await page(messaging, alice, with_changes=True) == before
    assert len(live) == 2  # the message's and its reply's


async def test_a_rename_is_announced_by_name(messaging):
    alice, bob = messaging.add_users("Alice", "Bob")
    created = await room_with(messaging, alice, bob)
    room = RoomInfo.model_validate({**created.payload["room"], "name": "Attic"})
    renamed = RoomUpdated(room=room, renamed_by=alice.id, renamed_by_name="Alice", old_name="Den")
    updated = event("room.updated", renamed, "r1", 2)
    await hand_over(messaging, updated)
    await messaging.react("follow_rooms", updated)  # again, from the queue: announced once
    reimaged = RoomUpdated(room=room.model_copy(update={"image_url": "https://x.test/i.png"}))
    await hand_over(messaging, event("room.updated", reimaged, "r1", 3))
    items = (await page(messaging, bob))["items"]
    assert [i["content"] for i in items if i["kind"] == "announcement"][1:] == ["Alice renamed the room to Attic"]


async def test_items_stored_before_v12_read_as_before(messaging):
    """An item stored without the new fields reads with their defaults."""
    (alice, _), first = await chat(messaging, "Alice", "Bob")
    raw = await Item.get_pymongo_collection().find_one({"_id": first["id"]})
    old = {k: v for k, v in raw.items() if k not in {"reply_to", "mentions", "mentions_room", "reactions"}}
    old = {k: v for k, v in old.items() if k not in {"edited_at", "deleted_at", "target_seq", "emoji", "unchanged_in"}}
    await Item.get_pymongo_collection().replace_one({"_id": first["id"]}, old)
    assert (await page(messaging, alice))["items"][1] == first


async def test_copies_of_one_delivery_keep_its_id_and_different_ones_get_their_own(messaging):
    """An announcement to the room and to its newcomers is one delivery (a gateway keeps the first);
    a change's room.item_changed of the item and of a reply quoting it are two."""
    (alice, bob), first = await chat(messaging, "Alice", "Bob")
    announced = [d for d in messaging.sent("room.item_added") if d["data"]["item"]["seq"] == 1]
    assert {d["key"] for d in announced} == {"room.r1", user_key(alice.id), user_key(bob.id)}
    assert len({d["id"] for d in announced}) == 1
    await messaging.ok("send_message", alice, {"room_id": "r1", "content": "re", "reply_to": first["seq"]})
    await messaging.ok("edit_message", bob, {"room_id": "r1", "seq": first["seq"], "content": "new"})
    edits = messaging.sent("room.item_changed", "room.r1")
    assert len(edits) == 2 and len({d["id"] for d in edits}) == 2
