"""Messages through the gateway: delivery to every connection, order, paging, idempotency, replicas."""

from __future__ import annotations

import asyncio
import os
import signal

from support.client import Client

from e2e.helpers import announced, make_room, new_user


async def test_two_users_two_connections_each(connect):
    """Every open connection of every participant gets each message, the sender's own included."""
    alice1, bob1 = await connect("Alice"), await connect("Bob")
    alice2, bob2 = await connect(as_user=alice1.user), await connect(as_user=bob1.user)
    room = await make_room(alice1, bob1)
    for client in (alice2, bob2):
        await client.expect_event("room.created", lambda d: d["room"]["id"] == room["id"])
    sent = (await bob2.ok("send_message", {"room_id": room["id"], "content": "  hello  "}))["item"]
    assert sent["content"] == "hello" and sent["kind"] == "message" and sent["sender_id"] == bob1.user["id"]
    for client in (alice1, alice2, bob1, bob2):
        got = await client.expect_event("room.item_added", lambda d: d["item"]["id"] == sent["id"])
        assert got["item"] == sent


async def test_events_of_a_room_arrive_in_seq_order(connect):
    """Items of one room reach a client by seq, 1, 2, 3 ... with no gaps, announcements included."""
    alice, bob = await connect("Alice"), await connect("Bob")
    room = await make_room(alice, bob)
    await asyncio.gather(*(alice.ok("send_message", {"room_id": room["id"], "content": f"a{n}"}) for n in range(10)))
    await asyncio.gather(*(bob.ok("send_message", {"room_id": room["id"], "content": f"b{n}"}) for n in range(10)))
    await bob.expect_event("room.item_added", lambda d: d["item"]["seq"] == 21)
    # everything before seq 21 arrived before it, in order, and is still pending
    seqs = [d["item"]["seq"] for d in bob.pending("room.item_added", lambda d: d["item"]["room_id"] == room["id"])]
    assert seqs == list(range(1, 21))


async def test_retried_command_id_acts_once(connect):
    """The same id again, on another connection, within 24 hours: the first reply, nothing caused."""
    alice = await connect("Alice")
    alice2 = await connect(as_user=alice.user)
    room = await make_room(alice)
    first = await alice.request("send_message", {"room_id": room["id"], "content": "once"}, id="retry-me")
    again = await alice2.request("send_message", {"room_id": room["id"], "content": "other data"}, id="retry-me")
    assert again == first | {"re": "retry-me"}
    # a different type with the same id is another command
    other = await alice.request("rename_room", {"room_id": room["id"], "name": "Renamed"}, id="retry-me")
    assert other["type"] == "ok"
    items = (await alice.ok("get_room_items", {"room_id": room["id"]}))["items"]
    assert [i["content"] for i in items if i["kind"] == "message"] == ["once"]
    # a bad_request about data is remembered too: the same id with good data causes nothing
    bad = await alice.request("send_message", {"room_id": room["id"], "content": ""}, id="bad-data")
    assert bad["error"]["code"] == "bad_request" and "data.content" in bad["error"]["details"]
    assert await alice.request("send_message", {"room_id": room["id"], "content": "ok now"}, id="bad-data") == bad
    # a remembered error is replayed too, even once it would succeed
    bob = await connect("Bob")
    refused = await alice.request(
        "invite_to_room", {"room_id": room["id"], "user_id": "later-" + bob.user["id"]}, id="inv"
    )
    assert refused["error"]["code"] == "not_found"
    assert (
        await alice.request("invite_to_room", {"room_id": room["id"], "user_id": bob.user["id"]}, id="inv") == refused
    )


async def test_paging_room_items(connect):
    """Bounds are exclusive, items ascend, has_more tells what lies beyond the page."""
    alice = await connect("Alice")
    room = await make_room(alice)
    await announced(alice, room["id"], "created")
    for n in range(2, 8):
        await alice.ok("send_message", {"room_id": room["id"], "content": f"m{n}"})

    async def page(**bounds):
        data = await alice.ok("get_room_items", {"room_id": room["id"], **bounds})
        return [i["seq"] for i in data["items"]], data["has_more"]

    assert await page() == ([1, 2, 3, 4, 5, 6, 7], False)
    assert await page(limit=3) == ([5, 6, 7], True)
    assert await page(before_seq=5, limit=3) == ([2, 3, 4], True)
    assert await page(before_seq=4, limit=3) == ([1, 2, 3], False)
    assert await page(after_seq=2, limit=3) == ([3, 4, 5], True)
    assert await page(after_seq=4, limit=3) == ([5, 6, 7], False)
    assert await page(after_seq=2, before_seq=6) == ([3, 4, 5], False)
    assert await page(after_seq=2, before_seq=6, limit=2) == ([3, 4], True)
    assert await page(after_seq=7) == ([], False)
    assert await page(after_seq=0, limit=2) == ([1, 2], True)  # 0 pages from the first item
    assert await page(after_seq=None, before_seq=None, limit=None) == ([1, 2, 3, 4, 5, 6, 7], False)  # null: absent


async def test_unread_counts_messages_from_others_only(connect):
    """Announcements and one's own messages never count as unread; sending moves the sender's mark."""
    alice, bob = await connect("Alice"), await connect("Bob")
    room = await make_room(alice, bob)
    await alice.ok("send_message", {"room_id": room["id"], "content": "one"})
    last = (await alice.ok("send_message", {"room_id": room["id"], "content": "two"}))["item"]
    mine = (await bob.ok("send_message", {"room_id": room["id"], "content": "mine"}))["item"]
    # read right after the replies: sending moved bob's mark to his message, past alice's two
    summary = next(s for s in (await bob.ok("list_rooms"))["rooms"] if s["room"]["id"] == room["id"])
    assert summary["last_read_seq"] == mine["seq"] and summary["unread_count"] == 0
    summary = next(s for s in (await alice.ok("list_rooms"))["rooms"] if s["room"]["id"] == room["id"])
    assert summary["last_read_seq"] == last["seq"]
    assert summary["unread_count"] == 1 and summary["last_item"] == mine
    assert (await bob.expect_event("room.read", lambda d: d["room_id"] == room["id"]))["last_read_seq"] == mine["seq"]


async def test_room_read_reaches_every_connection_of_the_sender_only(connect):
    """Sending moves the sender's mark: every connection of the sender gets room.read, another member not."""
    alice, bob = await connect("Alice"), await connect("Bob")
    room = await make_room(alice, bob)
    other_tab = await connect(as_user=bob.user)
    mine = (await bob.ok("send_message", {"room_id": room["id"], "content": "mine"}))["item"]
    for client in (bob, other_tab):
        read = await client.expect_event("room.read", lambda d: d["room_id"] == room["id"])
        assert read["last_read_seq"] == mine["seq"]
    await alice.expect_event("room.item_added", lambda d: d["item"]["id"] == mine["id"])
    await alice.sync()
    assert alice.pending("room.read") == []


async def test_bad_data_changes_nothing(connect):
    """Invalid data is bad_request with details, and nothing is stored."""
    alice = await connect("Alice")
    room = await make_room(alice)
    error = await alice.error("send_message", {"room_id": room["id"], "content": " " * 5})
    assert error["code"] == "bad_request" and "data.content" in error["details"]
    error = await alice.error("send_message", {"room_id": room["id"], "content": "x" * 4001})
    assert "data.content" in error["details"]
    items = (await alice.ok("get_room_items", {"room_id": room["id"]}))["items"]
    assert all(i["kind"] == "announcement" for i in items)


async def test_two_messaging_replicas_keep_seq_gap_free(start_stack):
    """With two messaging replicas sharing the commands, every room's seq stays 1, 2, 3 ... with no gaps."""
    # A correctness test under contention, not a speed test: generous timeouts for a loaded CI machine.
    stack = await start_stack(scale={"messaging": 2}, request_timeout_seconds=30)
    clients = [await Client.connect(stack.ws_url, dev_user=new_user(f"U{n}")) for n in range(4)]
    try:
        owner, *others = clients
        room = (await owner.ok("create_room", {"name": "Busy", "participant_ids": [c.user["id"] for c in others]}))[
            "room"
        ]
        sends = [
            c.ok("send_message", {"room_id": room["id"], "content": f"{n}"}, timeout=60)
            for n in range(15)
            for c in clients
        ]
        replies = await asyncio.gather(*sends)
        seqs = sorted(r["item"]["seq"] for r in replies)
        assert len(set(seqs)) == 60
        await owner.expect_event("room.item_added", lambda d: d["item"]["seq"] == 61, timeout=60)
        # in order, as they happened, even though two replicas wrote them
        received = [
            d["item"]["seq"] for d in owner.pending("room.item_added", lambda d: d["item"]["room_id"] == room["id"])
        ]
        assert received == list(range(1, 61))
        items = []
        after = 0
        while True:
            page = await owner.ok(
                "get_room_items", {"room_id": room["id"], "limit": 100, **({"after_seq": after} if after else {})}
            )
            items += page["items"]
            if not page["has_more"]:
                break
            after = items[-1]["seq"]
        assert [i["seq"] for i in items] == list(range(1, 62))
        assert sum(i["kind"] == "message" for i in items) == 60
        handled = await stack.handled_by("messaging")
        assert len(handled) == 2 and all(count > 0 for count in handled.values()), handled
    finally:
        for client in clients:
            await client.close()


async def test_sending_needs_neither_rooms_nor_users(connect, stack):
    """Messaging decides from its own copy of the room: with the rooms and users workers frozen, sends,
    reads and room lists still answer within a second, and the other member gets the message."""
    alice, bob = await connect("Alice"), await connect("Bob")
    room = await make_room(alice, bob)
    frozen = [stack.supervisor.pid(name) for name in ("rooms-1", "users-1")]
    assert all(frozen)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        async with asyncio.timeout(1.0):
            sent = (await alice.ok("send_message", {"room_id": room["id"], "content": "still here"}))["item"]
        async with asyncio.timeout(1.0):
            await bob.expect_event("room.item_added", lambda d: d["item"]["id"] == sent["id"])
            items = (await bob.ok("get_room_items", {"room_id": room["id"], "after_seq": sent["seq"] - 1}))["items"]
            rooms = (await bob.ok("list_rooms"))["rooms"]
        assert items == [sent]
        assert next(s for s in rooms if s["room"]["id"] == room["id"])["last_item"] == sent
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
