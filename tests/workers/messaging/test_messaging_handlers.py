"""The messaging worker's commands and reactions, through the real pipeline on the Mongo stand-in.

Messaging decides from its own copy of each room: the tests feed it rooms' events the way rooms
hands them over (``copy_room_changes``) and asks nothing of any other worker (the fake answers nothing).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from pymongo.errors import AutoReconnect
from support.fcm import presence
from support.handlers import READS, WRITES, database_calls, event, replica
from support.rooms import hand_over, info, room_with
from support.shapes import a_poll

from contracts.envelope import Command
from contracts.events import MemberJoined, MemberLeft, ProfileChanged
from contracts.routing import ITEMS_FOR_OFFLINE, reply_key, user_key
from contracts.shapes import User
from workers.messaging import storage
from workers.messaging.app import WORKER
from workers.messaging.storage import Item
from workers.runtime.dispatch import Answer, run_command
from workers.runtime.outbox import Caller


def bob_joins(alice, bob) -> MemberJoined:
    return MemberJoined(
        room=info(alice.id, bob.id), user_id=bob.id, user_name="Bob", invited_by=alice.id, invited_by_name="Alice"
    )


async def test_send_message_numbers_and_publishes(messaging):
    """A message takes the seq after the announcement, is published and readable; no other worker asked."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    item = (await messaging.ok("send_message", alice, {"room_id": "r1", "content": "hi"}))["item"]
    assert item["seq"] == 2 and item["sender_id"] == alice.id
    sent = messaging.sent("room.item_added", "room.r1")
    assert [s["data"]["item"]["seq"] for s in sent] == [1, 2]
    [read] = messaging.sent("room.read", user_key(alice.id))  # riding on the message's room delivery
    assert read["data"] == {"room_id": "r1", "last_read_seq": 2}
    [_, added] = messaging.events("room.item_added")
    assert added["payload"]["sender_name"] == "Alice" and added["version"] == 2
    page = await messaging.ok("get_room_items", bob, {"room_id": "r1", "after_seq": 0})
    assert [i["seq"] for i in page["items"]] == [1, 2] and page["has_more"] is False
    assert [worker for worker, _ in messaging.rpc.calls] == []


async def test_a_send_to_a_known_room_is_one_insert_and_nothing_else(messaging, monkeypatch):
    """Before the reply, a send stores its item and does nothing else with the database: this
    process keeps the room's last seq and copy, and publish marks come later, many in one write."""

    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    await messaging.ok("send_message", alice, {"room_id": "r1", "content": "warm"})
    # the mark waits for drain() (the chores' last run), after the reply
    calls = database_calls(monkeypatch, READS + WRITES)
    data = {"room_id": "r1", "content": "hi"}
    answer = await run_command(
        WORKER, messaging.runtime, Command(type="send_message", id="s1", user_id=bob.id, data=data)
    )
    assert answer.reply.error is None
    assert calls == ["items.insert_many"]
    await messaging.drain()
    assert calls == ["items.insert_many", "items.update_many"]


async def test_sends_to_a_busy_room_share_its_writes(messaging, monkeypatch):
    """Sends that come while the room's write is on its way are stored together by the next one
    (group commit): every send is answered with its own seq, and published in seq order."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    await messaging.ok("send_message", alice, {"room_id": "r1", "content": "warm"})
    calls = database_calls(monkeypatch, WRITES)
    replies = await asyncio.gather(
        *(messaging.ok("send_message", alice, {"room_id": "r1", "content": f"m{n}"}) for n in range(10))
    )
    assert sorted(r["item"]["seq"] for r in replies) == list(range(3, 13))
    inserts = [call for call in calls if call.startswith("items.insert")]
    assert set(inserts) == {"items.insert_many"} and len(inserts) < 10, inserts
    published = [e["payload"]["item"] for e in messaging.events("room.item_added")]
    assert [i["seq"] for i in published] == list(range(1, 13))
    assert {r["item"]["id"] for r in replies} == {i["id"] for i in published[2:]}


async def test_sends_queued_behind_a_seq_another_replica_took_are_numbered_again(messaging):
    """Another replica stores the next item while this one has sends queued for that seq and after:
    the write fails at the taken seq, and every queued send is numbered again after it, none lost,
    none twice, in order."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    await messaging.ok("send_message", alice, {"room_id": "r1", "content": "warm"})
    other = replica(messaging)
    taken = (await other.ok("send_message", bob, {"room_id": "r1", "content": "other replica"}))["item"]
    assert taken["seq"] == 3
    replies = await asyncio.gather(
        *(messaging.ok("send_message", alice, {"room_id": "r1", "content": f"m{n}"}) for n in range(5))
    )
    assert sorted(r["item"]["seq"] for r in replies) == list(range(4, 9))
    page = await messaging.ok("get_room_items", bob, {"room_id": "r1", "after_seq": 0})
    assert [i["seq"] for i in page["items"]] == list(range(1, 9))
    assert sorted(i["content"] for i in page["items"][3:]) == [f"m{n}" for n in range(5)]
    seqs = [e["payload"]["item"]["seq"] for e in messaging.events("room.item_added")]
    assert seqs == sorted(seqs) and set(seqs) == set(range(1, 9))


async def test_a_failed_write_fails_its_sends_and_their_retries_are_stored(messaging, monkeypatch):
    """The database fails a room's write: every send in it fails as its own write would (the worker
    does not answer; the client retries), and the retries are numbered on from what is stored."""
    from workers.messaging import storage

    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    await messaging.ok("send_message", alice, {"room_id": "r1", "content": "warm"})
    stored = storage.insert_items

    async def broken(items):
        raise AutoReconnect("connection lost")

    monkeypatch.setattr(storage, "insert_items", broken)
    sends = [
        Command(type="send_message", id=f"s{n}", user_id=alice.id, data={"room_id": "r1", "content": f"m{n}"})
        for n in range(3)
    ]
    failed = await asyncio.gather(*(run_command(WORKER, messaging.runtime, s) for s in sends), return_exceptions=True)
    assert all(isinstance(outcome, AutoReconnect) for outcome in failed), failed
    monkeypatch.setattr(storage, "insert_items", stored)
    retried = [await run_command(WORKER, messaging.runtime, s) for s in sends]
    assert [r.reply.ok["item"]["seq"] for r in retried] == [3, 4, 5]


async def test_a_send_reply_rides_on_its_room_delivery_when_the_caller_offers_a_key(messaging):
    """Offered a deliveries key, the reply goes inside the message's room delivery, routed to that key
    too, and the command has nothing more to send. What is stored carries no reply, and a retry of the
    send (its item already stored) is answered on its own, as is a caller that offered no key."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    data = {"room_id": "r1", "content": "hi"}
    send = Command(type="send_message", id="s1", user_id=alice.id, data=data)
    caller = Caller("gateway-queue", "c1", reply_key("g1"))
    answer = await run_command(WORKER, messaging.runtime, send, caller)
    await messaging.drain()
    reply = answer.reply
    assert reply.error is None and answer.carried
    [delivery] = [d for d in messaging.sent("room.item_added", "room.r1") if d["data"]["item"]["seq"] == 2]
    assert delivery["cc"] == [reply_key("g1")]
    assert delivery["reply"] == {"correlation_id": "c1", "reply": reply.model_dump(mode="json", exclude_none=True)}
    stored = await Item.get(reply.ok["item"]["id"])
    assert stored is not None and stored.event is not None
    assert all("reply" not in d.body for d in stored.event.deliveries)

    again = Caller("gateway-queue", "c2", reply_key("g1"))
    assert await run_command(WORKER, messaging.runtime, send, again) == Answer(reply, carried=False)
    plain = Caller("worker-queue", "c3")
    other = Command(type="send_message", id="s2", user_id=bob.id, data=data)
    sent = await run_command(WORKER, messaging.runtime, other, plain)
    assert sent.reply.error is None and not sent.carried
    await messaging.drain()
    assert [d.get("reply") for d in messaging.sent("room.item_added", "room.r1")] == [None, delivery["reply"], None]


async def test_a_process_keeps_the_timelines_of_the_rooms_written_latest(messaging, monkeypatch):
    """Beyond TIMELINES_KEPT rooms, the one written least recently is forgotten; its next send reads
    its last seq again and numbers on from it."""
    from workers.messaging import timeline

    monkeypatch.setattr(timeline, "TIMELINES_KEPT", 2)
    alice, bob = messaging.add_users("Alice", "Bob")
    for room_id in ("r1", "r2", "r3"):
        await room_with(messaging, alice, bob, room_id=room_id)
    for room_id in ("r1", "r2", "r1", "r3"):  # r2 is then the least recent
        await messaging.ok("send_message", alice, {"room_id": room_id, "content": "hi"})
    assert list(messaging.runtime.kept(timeline.TIMELINES).rooms) == ["r1", "r3"]
    item = (await messaging.ok("send_message", bob, {"room_id": "r2", "content": "back"}))["item"]
    assert item["seq"] == 3  # the announcement, alice's message, this one
    assert list(messaging.runtime.kept(timeline.TIMELINES).rooms) == ["r3", "r2"]


async def test_an_item_is_routed_to_notifications_only_while_a_recipient_is_offline(messaging):
    """Under ITEMS_FOR_OFFLINE (the notifications worker's only key) when the presence replica has
    a recipient offline or has never seen them; not when all but the sender are online."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)

    async def routed(content: str) -> list[str]:
        await messaging.ok("send_message", alice, {"room_id": "r1", "content": content})
        return messaging.outbox.also[messaging.events("room.item_added")[-1]["event_id"]]

    assert await routed("bob was never seen online") == [ITEMS_FOR_OFFLINE]
    for name in ("track_presence", "presence"):  # the durable replica and this process's mirror
        await messaging.react(name, presence(bob.id, True, 2))
    assert await routed("bob is online, alice sends: nobody to push") == []
    await messaging.react("presence", presence(bob.id, False, 3))
    assert await routed("bob went offline") == [ITEMS_FOR_OFFLINE]
    await messaging.react("presence", presence(bob.id, True, 1))  # an older event changes nothing
    assert await routed("still offline") == [ITEMS_FOR_OFFLINE]


async def test_a_replica_that_knew_the_room_refuses_a_leaver(messaging):
    """Another replica applies the leave: this one's copy is older, but the leave's announcement took
    the next seq, so this one's insert fails, and it reads the room again before deciding."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    other = replica(messaging)
    await messaging.ok("send_message", bob, {"room_id": "r1", "content": "still here"})
    left = MemberLeft(room=info(alice.id), user_id=bob.id, user_name="Bob")
    await hand_over(other, event("room.member_left", left, "r1", 2))
    assert await messaging.error("send_message", bob, {"room_id": "r1", "content": "hi"}) == "forbidden"
    item = (await messaging.ok("send_message", alice, {"room_id": "r1", "content": "bye"}))["item"]
    assert item["seq"] == 4, "after the leave's announcement"


async def test_a_replica_that_knew_the_room_lets_a_newcomer_post(messaging):
    """Another replica applies the invite: this one's copy lacks the newcomer, so it reads the room
    again before refusing anyone."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice)
    other = replica(messaging)
    await messaging.ok("send_message", alice, {"room_id": "r1", "content": "alone"})
    await hand_over(other, event("room.member_joined", bob_joins(alice, bob), "r1", 2))
    item = (await messaging.ok("send_message", bob, {"room_id": "r1", "content": "hello"}))["item"]
    assert item["seq"] == 4


async def test_a_replica_meeting_a_room_publishes_what_may_still_be_on_its_way_first(messaging):
    """The room's latest item is stored but its writer has not confirmed its publish: a replica that
    sends to the room for the first time publishes it before its own, so gateways get the order."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    item = (await messaging.ok("send_message", alice, {"room_id": "r1", "content": "one"}))["item"]
    await Item.get_pymongo_collection().update_one({"_id": item["id"]}, {"$set": {"published_at": None}})
    other = replica(messaging)
    await other.ok("send_message", bob, {"room_id": "r1", "content": "two"})
    assert [e["payload"]["item"]["content"] for e in other.events("room.item_added")] == ["one", "two"]


async def test_a_leaver_who_posted_cannot_post_after_the_leave(messaging):
    """The same process applies the leave: writing its announcement makes it read the copy again."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    await messaging.ok("send_message", bob, {"room_id": "r1", "content": "still here"})
    left = MemberLeft(room=info(alice.id), user_id=bob.id, user_name="Bob")
    await hand_over(messaging, event("room.member_left", left, "r1", 2))
    assert await messaging.error("send_message", bob, {"room_id": "r1", "content": "hi"}) == "forbidden"


async def test_a_leave_from_the_queue_changes_the_copy_before_its_announcement(messaging):
    """From the queues (no hand-over), follow_rooms may come before copy_rooms: it writes the copy
    first, so no process reads a copy older than the timeline it knows."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    await messaging.ok("send_message", bob, {"room_id": "r1", "content": "still here"})
    left = MemberLeft(room=info(alice.id), user_id=bob.id, user_name="Bob")
    await messaging.react("follow_rooms", event("room.member_left", left, "r1", 2))
    assert await messaging.error("send_message", bob, {"room_id": "r1", "content": "hi"}) == "forbidden"


async def test_outsiders_and_missing_rooms(messaging):
    """A non-member is forbidden and a missing room not_found; nothing is written or published."""
    alice, eve = messaging.add_users("Alice", "Eve")
    await room_with(messaging, alice)
    published = len(messaging.outbox.events)
    assert await messaging.error("send_message", eve, {"room_id": "r1", "content": "hi"}) == "forbidden"
    assert await messaging.error("send_message", alice, {"room_id": "r2", "content": "hi"}) == "not_found"
    assert await messaging.error("get_room_items", eve, {"room_id": "r1"}) == "forbidden"
    assert await messaging.error("get_room", eve, {"room_id": "r1"}) == "forbidden"
    assert len(messaging.outbox.events) == published


async def test_a_leaver_cannot_post_once_the_leave_is_handed_over(messaging):
    """The copy changes when rooms hands the leave over; the leaver gets member_left, not the announcement."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    left = MemberLeft(room=info(alice.id), user_id=bob.id, user_name="Bob")
    await hand_over(messaging, event("room.member_left", left, "r1", 2))
    assert await messaging.error("send_message", bob, {"room_id": "r1", "content": "hi"}) == "forbidden"
    assert messaging.sent("room.member_left", user_key(bob.id))
    [_, gone] = messaging.events("room.item_added")
    assert gone["payload"]["item"]["content"] == "Bob left"
    assert gone["payload"]["participant_ids"] == [alice.id], "the leaver gets no push for it"


async def test_overlapping_copies_of_a_send_store_one_item(messaging):
    """Four copies of one send_message at once: one item, every copy gets it."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    data = {"room_id": "r1", "content": "once"}
    replies = await asyncio.gather(*(messaging.command("send_message", alice, data, id="same") for _ in range(4)))
    assert len({r.ok["item"]["seq"] for r in replies if r.ok}) == 1 and all(r.error is None for r in replies)
    items = (await messaging.ok("get_room_items", bob, {"room_id": "r1"}))["items"]
    assert [i["content"] for i in items].count("once") == 1


async def test_a_refusal_is_remembered_for_its_id(messaging):
    """forbidden for an id stays the answer to that id, even once the sender is invited."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice)
    reply = await messaging.command("send_message", bob, {"room_id": "r1", "content": "hi"}, id="x")
    assert reply.error.code == "forbidden"
    joined = MemberJoined(
        room=info(alice.id, bob.id), user_id=bob.id, user_name="Bob", invited_by=alice.id, invited_by_name="Alice"
    )
    await hand_over(messaging, event("room.member_joined", joined, "r1", 2))
    again = await messaging.command("send_message", bob, {"room_id": "r1", "content": "hi"}, id="x")
    assert again.error.code == "forbidden"


async def test_marks_unread_counts_and_list_rooms(messaging):
    """A newcomer's mark is the latest item before their announcement; own messages and announcements
    are never unread; sending moves the sender's mark; list_rooms puts the latest activity first."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice)
    await room_with(messaging, alice, room_id="r2")
    for text in ("one", "two"):
        await messaging.ok("send_message", alice, {"room_id": "r1", "content": text})
    joined = MemberJoined(
        room=info(alice.id, bob.id), user_id=bob.id, user_name="Bob", invited_by=alice.id, invited_by_name="Alice"
    )
    joining = event("room.member_joined", joined, "r1", 2)
    await hand_over(messaging, joining)
    await messaging.react("follow_rooms", joining)  # the same event again, from the queue: nothing more
    await messaging.ok("send_message", alice, {"room_id": "r1", "content": "three"})
    [summary] = (await messaging.ok("list_rooms", bob))["rooms"]
    assert (summary["last_read_seq"], summary["unread_count"], summary["last_item"]["seq"]) == (3, 1, 5)
    assert summary["room"]["last_seq"] == 5
    await messaging.ok("send_message", bob, {"room_id": "r1", "content": "me"})
    [summary] = (await messaging.ok("list_rooms", bob))["rooms"]
    assert (summary["last_read_seq"], summary["unread_count"]) == (6, 0)
    assert (await messaging.ok("mark_room_read", bob, {"room_id": "r1", "seq": 2}))["last_read_seq"] == 6
    alices = (await messaging.ok("list_rooms", alice))["rooms"]
    assert [s["room"]["id"] for s in alices] == ["r1", "r2"] and alices[0]["unread_count"] == 1
    assert (await messaging.ok("mark_room_read", alice, {"room_id": "r1"}))["last_read_seq"] == 6
    assert len([e for e in messaging.events("room.read") if e["payload"]["user_id"] == bob.id]) == 1


async def test_missed_items_are_the_unread_items_of_the_users_rooms_since_a_time(messaging):
    """What notifications asks for once a user went offline: the items of their rooms stored since a
    time, after their read mark and their own latest message, not their own; another room's never."""
    alice, bob, cid = messaging.add_users("Alice", "Bob", "Cid")
    await room_with(messaging, alice, bob)
    await room_with(messaging, alice, cid, room_id="r2")

    async def send(user, text, room_id="r1"):
        return (await messaging.ok("send_message", user, {"room_id": room_id, "content": text}))["item"]

    async def missed(since: datetime) -> list[tuple[int, str]]:
        reply = await messaging.ok("missed_items", bob, {"since": since.isoformat()})
        published = {e["event_id"]: e["payload"] for e in messaging.events("room.item_added")}
        assert all(published[i["event_id"]] == i["added"] for i in reply["items"])  # each with its event
        return [(i["added"]["item"]["seq"], i["added"]["item"]["content"]) for i in reply["items"]]

    first = await send(alice, "one")
    for text in ("two", "three"):
        await send(alice, text)
    await messaging.ok("mark_room_read", bob, {"room_id": "r1", "seq": 2})
    await send(alice, "elsewhere", room_id="r2")
    long_ago = datetime.fromisoformat(first["sent_at"]) - timedelta(minutes=1)
    assert await missed(long_ago) == [(3, "two"), (4, "three")]
    assert await missed(datetime.now(UTC) + timedelta(minutes=1)) == []  # nothing stored since
    await send(bob, "me")  # sending moves Bob's mark: what came before is read
    await send(alice, "four")
    assert await missed(long_ago) == [(6, "four")]
    assert await messaging.error("missed_items", bob, {"since": "yesterday"}) == "bad_request"


async def test_missed_items_are_those_after_what_a_connection_was_sent(messaging):
    """In a room a gateway says it sent items of, the missed ones are those after the last one sent,
    whenever they were stored; another room's still count from the time."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    await room_with(messaging, alice, bob, room_id="r2")
    for text in ("one", "two", "three"):
        await messaging.ok("send_message", alice, {"room_id": "r1", "content": text})
    await messaging.ok("send_message", alice, {"room_id": "r2", "content": "elsewhere"})
    since = datetime.now(UTC) - timedelta(minutes=1)

    async def missed(delivered: dict[str, int]) -> list[tuple[str, int]]:
        reply = await messaging.ok("missed_items", bob, {"since": since.isoformat(), "delivered": delivered})
        return [(i["added"]["item"]["room_id"], i["added"]["item"]["seq"]) for i in reply["items"]]

    everything = await missed({})
    assert ("r1", 2) in everything and ("r2", 2) in everything
    assert ("r1", 2) not in await missed({"r1": 2})
    assert [seq for room_id, seq in await missed({"r1": 3}) if room_id == "r1"] == [4]
    assert [seq for room_id, seq in await missed({"r1": 4}) if room_id == "r1"] == []
    since = datetime.now(UTC) + timedelta(minutes=1)  # nothing stored since: only what came after the seq
    assert await missed({"r1": 3}) == [("r1", 4)]


async def test_unread_counts_come_from_the_rooms_numbers(messaging, monkeypatch):
    """Unread: the items after the mark in effect less the announcements among them. A room read to
    its end, whose last item is the user's own, costs list_rooms one read of that item."""
    alice, bob = messaging.add_users("Alice", "Bob")
    carol = messaging.add_users("Carol")[0]
    await room_with(messaging, alice, bob)
    for text in ("two", "three"):
        await messaging.ok("send_message", bob, {"room_id": "r1", "content": text})
    await messaging.ok("mark_room_read", alice, {"room_id": "r1", "seq": 2})
    joined = MemberJoined(
        room=info(alice.id, bob.id, carol.id),
        user_id=carol.id,
        user_name="Carol",
        invited_by=bob.id,
        invited_by_name="Bob",
    )
    await hand_over(messaging, event("room.member_joined", joined, "r1", 2))  # announcement 4
    await messaging.ok("send_message", bob, {"room_id": "r1", "content": "five"})
    [summary] = (await messaging.ok("list_rooms", alice))["rooms"]
    assert (summary["last_read_seq"], summary["unread_count"], summary["room"]["last_seq"]) == (2, 2, 5)
    [carols] = (await messaging.ok("list_rooms", carol))["rooms"]
    assert (carols["last_read_seq"], carols["unread_count"]) == (3, 1), "welcomed at 3: bob's five"

    await messaging.ok("send_message", alice, {"room_id": "r1", "content": "six"})
    calls = database_calls(monkeypatch, READS)
    [summary] = (await messaging.ok("list_rooms", alice))["rooms"]
    assert (summary["last_read_seq"], summary["unread_count"]) == (6, 0)
    assert sorted(calls) == ["items.find", "marks.find", "rooms.find"]


async def test_meetup_and_poll_announcements_come_once(messaging):
    """An announcement of another worker's event is written once however often the event comes."""
    from contracts.events import PollCreated

    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    poll = a_poll(participant_ids=[alice.id], creator_id=alice.id)
    opened = event("poll.created", PollCreated(poll=poll, room_id="r1", creator_name="Alice"))
    await messaging.react("announce_poll_created", opened)
    await messaging.react("announce_poll_created", opened)
    items = (await messaging.ok("get_room_items", bob, {"room_id": "r1"}))["items"]
    assert [i["content"] for i in items] == ["Alice created the room Den", "Alice started a poll: Food? (Pizza, Sushi)"]


async def test_items_published_meanwhile_are_marked_by_one_write(messaging, monkeypatch):
    """The publish marks are no second write per send: one write marks what was confirmed meanwhile."""
    from workers.messaging import storage

    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    marked: list[list[str]] = []  # nothing marks by time in this test (chores do not run): drain() does
    original = storage.mark_published

    async def spy(ids):
        marked.append([(await Item.get(i)).content for i in ids])
        await original(ids)

    monkeypatch.setattr(storage, "mark_published", spy)
    for text in ("one", "two", "three"):
        data = {"room_id": "r1", "content": text}
        command = Command(type="send_message", id=uuid.uuid4().hex, user_id=alice.id, data=data)
        assert (await run_command(WORKER, messaging.runtime, command)).reply.error is None
    assert marked == []
    await messaging.drain()
    assert marked == [["one", "two", "three"]]
    assert all(i.published_at is not None for i in await Item.find(Item.room_id == "r1").to_list())


async def test_a_published_item_is_marked_and_the_relay_leaves_it(messaging):
    """Publishing marks items (in batches); the relay republishes only what a crash left unmarked."""
    from workers.messaging.timeline import relay_items

    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    item = (await messaging.ok("send_message", alice, {"room_id": "r1", "content": "hi"}))["item"]
    assert (await Item.get(item["id"])).published_at is not None
    await Item.get_pymongo_collection().update_one({"_id": item["id"]}, {"$set": {"published_at": None}})
    before = len(messaging.events("room.item_added"))
    messaging.runtime.now = lambda: datetime(2100, 1, 1, tzinfo=UTC)  # everything is old enough to relay
    await relay_items(messaging.runtime)
    await messaging.drain()
    assert [e["payload"]["item"]["id"] for e in messaging.events("room.item_added")[before:]] == [item["id"]]
    assert (await Item.get(item["id"])).published_at is not None


async def test_a_bad_request_is_remembered_for_its_id_whatever_the_data(messaging):
    """bad_request about data is an outcome: the same id with good data still gets it, and no item."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    first = await messaging.command("send_message", alice, {"room_id": "r1", "content": "   "}, id="typo")
    again = await messaging.command("send_message", alice, {"room_id": "r1", "content": "fixed"}, id="typo")
    assert first.error.code == again.error.code == "bad_request" and again == first
    items = (await messaging.ok("get_room_items", bob, {"room_id": "r1"}))["items"]
    assert [i["kind"] for i in items] == ["announcement"]


async def test_renames_apply_in_version_order(messaging):
    """An older rename applied late, or a rooms event carrying a name resolved earlier, never
    overwrites the name a newer user.profile_changed set."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice)

    def renamed(name: str, version: int):
        return event("user.profile_changed", ProfileChanged(user=User(id=alice.id, name=name)), alice.id, version)

    await messaging.react("name_users", renamed("Alicia", 3))
    await messaging.react("name_users", renamed("Al", 2))  # older, redelivered late
    await hand_over(messaging, event("room.member_joined", bob_joins(alice, bob), "r1", 2))  # says "Alice"
    await messaging.ok("send_message", alice, {"room_id": "r1", "content": "hi"})
    assert messaging.events("room.item_added")[-1]["payload"]["sender_name"] == "Alicia"
    await messaging.react("name_users", renamed("Ally", 4))
    assert (await storage.copy("r1"))[1].names == {alice.id: "Ally", bob.id: "Bob"}


async def test_a_send_id_reused_after_the_window_passes_the_membership_check(messaging, monkeypatch):
    """Within 24 hours a copy of a send gets its first outcome, the sender gone since or not; after
    them the id is a new command's: a leaver is refused, not answered ok with the old item."""
    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice, bob)
    first = await messaging.ok("send_message", bob, {"room_id": "r1", "content": "hi"}, id="old")
    left = MemberLeft(room=info(alice.id), user_id=bob.id, user_name="Bob")
    await hand_over(messaging, event("room.member_left", left, "r1", 2))
    assert await messaging.ok("send_message", bob, {"room_id": "r1", "content": "hi"}, id="old") == first
    later = datetime.now(UTC) + timedelta(hours=25)
    monkeypatch.setattr(messaging.runtime, "now", lambda: later)
    reply = await messaging.command("send_message", bob, {"room_id": "r1", "content": "hi"}, id="old")
    assert reply.error is not None and reply.error.code == "forbidden", reply


async def test_refused_sends_are_forgotten_after_the_idempotency_window(messaging, monkeypatch):
    """A refusal is remembered for 24 hours (a copy gets it), then the chore deletes it: the id acts
    as a new command's. Messages are never touched."""
    from workers.messaging.handlers import CHORES

    alice, bob = messaging.add_users("Alice", "Bob")
    await room_with(messaging, alice)
    await messaging.ok("send_message", alice, {"room_id": "r1", "content": "kept"})
    assert await messaging.error("send_message", bob, {"room_id": "r1", "content": "hi"}) == "forbidden"
    refused = await messaging.command("send_message", bob, {"room_id": "r1", "content": "hi"}, id="x")
    assert refused.error.code == "forbidden"
    await CHORES["forget_refusals"].run(messaging.runtime)
    assert len(await Item.find({"refusal": {"$ne": None}}).to_list()) == 2, "within the window: kept"
    later = datetime.now(UTC) + timedelta(hours=25)
    monkeypatch.setattr(messaging.runtime, "now", lambda: later)
    await CHORES["forget_refusals"].run(messaging.runtime)
    assert await Item.find({"refusal": {"$ne": None}}).to_list() == []
    monkeypatch.undo()
    await hand_over(messaging, event("room.member_joined", bob_joins(alice, bob), "r1", 2))
    assert (await messaging.ok("send_message", bob, {"room_id": "r1", "content": "hi"}, id="x"))["item"]["seq"] == 4
    items = (await messaging.ok("get_room_items", alice, {"room_id": "r1"}))["items"]
    assert [i["content"] for i in items] == ["Alice created the room Den", "kept", "Alice added Bob", "hi"]


async def test_list_rooms_is_bounded_by_a_limit(messaging):
    """list_rooms {limit}: the latest rooms, has_more when there are more; without it (v1's {}) up to
    the default, the same rooms as before; a limit out of 1-500 is a bad_request."""
    [alice] = messaging.add_users("Alice")
    for n in range(3):
        await room_with(messaging, alice, room_id=f"r{n}")
    await messaging.ok("send_message", alice, {"room_id": "r0", "content": "latest"})
    everything = await messaging.ok("list_rooms", alice)
    assert [s["room"]["id"] for s in everything["rooms"]] == ["r0", "r2", "r1"] and everything["has_more"] is False
    two = await messaging.ok("list_rooms", alice, {"limit": 2})
    assert two == {"rooms": everything["rooms"][:2], "has_more": True}
    assert await messaging.error("list_rooms", alice, {"limit": 0}) == "bad_request"
    assert await messaging.error("list_rooms", alice, {"limit": 501}) == "bad_request"
