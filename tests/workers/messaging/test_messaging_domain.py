"""Messaging's rules, without I/O."""

from datetime import UTC, datetime, timedelta

import pytest
from support.shapes import a_poll

from contracts.events import MemberJoined, MemberLeft, PollClosed, PollCreated, RoomCreated, RoomInfo, RoomUpdated
from contracts.routing import ITEMS_FOR_OFFLINE, room_key, user_key
from contracts.shapes import RoomItem
from workers.messaging import domain

NOW = datetime(2026, 1, 1, tzinfo=UTC)
INFO = RoomInfo(id="r", name="Den", image_url=None, participant_ids=["a", "b"], created_by="a", created_at=NOW)


def copy(version: int = 1) -> domain.RoomCopy:
    made = domain.copy_room(None, INFO, {"a": "Alice", "b": "Bob"}, version)
    assert made is not None
    return made


def test_the_copy_takes_only_newer_events():
    """A rooms event applies when its version is newer; names are kept for participants only."""
    first = copy(2)
    assert first.names == {"a": "Alice", "b": "Bob"} and first.room_version == 2
    assert domain.copy_room(first, INFO, {}, 2) is None
    assert domain.copy_room(first, INFO, {}, 1) is None
    alone = INFO.model_copy(update={"participant_ids": ["a"]})
    later = domain.copy_room(first, alone, {}, 3)
    assert later is not None and later.participant_ids == ["a"] and later.names == {"a": "Alice"}


def test_a_message_is_its_seq_with_the_room_and_the_senders_mark():
    """The item at the given seq, to the room; room.read, riding on it, moves the sender's mark; names for pushes."""
    fact = domain.send_message(copy(), "a", "hi", "i1", 7, NOW)
    assert fact.type == "room.item_added" and fact.aggregate_id == "r"
    assert fact.payload.item.seq == 7 and fact.payload.sender_name == "Alice"
    assert fact.payload.participant_ids == ["a", "b"] and fact.payload.room_name == "Den"
    [to_room] = fact.sends  # room.read rides on it: one broker message
    assert (to_room.key, to_room.event) == (room_key("r"), "room.item_added")
    [read] = to_room.riders
    assert (read.key, read.event, read.data.last_read_seq) == (user_key("a"), "room.read", 7)


def test_an_item_goes_to_notifications_only_when_someone_may_need_a_push():
    fact = domain.send_message(copy(), "a", "hi", "i1", 7, NOW)
    assert domain.routed_for_pushes(fact, offline=set()).also == ()
    assert domain.routed_for_pushes(fact, offline={"b"}).also == (ITEMS_FOR_OFFLINE,)


def test_only_participants_send_or_read():
    """Not in the room: forbidden; no such room: not_found."""
    with pytest.raises(domain.NotParticipantError):
        domain.send_message(copy(), "z", "hi", "i", 1, NOW)
    with pytest.raises(domain.RoomNotFoundError):
        domain.readable(None, "a")


def test_newcomers_get_the_announcement_through_their_own_key_too():
    """Their gateway may not have bound the room yet."""
    fact = domain.announce(copy(), "Alice added Bob", "i", 3, NOW, ("b",))
    assert fact.payload.item.sender_id is None and fact.payload.item.kind == "announcement"
    assert [s.key for s in fact.sends] == [room_key("r"), user_key("b")]


def test_read_marks_move_forward_only_and_own_messages_count():
    """Without seq or beyond the end: the latest item; never backwards, nor behind one's own message."""
    mark = domain.ReadMark(id="m", room_id="r", user_id="b")
    assert [f.payload.last_read_seq for f in domain.mark_read(mark, 0, 2, 5)] == [2]
    assert domain.mark_read(mark, 0, 1, 5) == []
    assert domain.mark_read(mark, 4, 3, 5) == [], "their own message at 4 already marks up to 4"
    assert [f.payload.last_read_seq for f in domain.mark_read(mark, 4, 99, 5)] == [5]
    assert domain.in_effect(mark.seq, 6) == 6


def test_a_newcomer_has_read_up_to_the_latest_item_and_a_returner_keeps_more():
    """welcome: the later of the latest item before the announcement and the old mark."""
    mark = domain.ReadMark(id="m", room_id="r", user_id="b", seq=5)
    assert domain.welcome(mark, 3) == [] and mark.seq == 5
    [fact] = domain.welcome(mark, 8)
    assert fact.type == "room.read" and mark.seq == 8


def test_what_members_see_of_rooms_events():
    """room.created to each participant; member_joined/left to the room and that user."""
    room = copy().view(4)
    created = domain.room_sends("room.created", RoomCreated(room=INFO, names={}), room)
    assert [s.key for s in created] == [user_key("a"), user_key("b")] and created[0].data.room.last_seq == 4
    left = MemberLeft(room=INFO, user_id="b", user_name="Bob")
    assert [s.key for s in domain.room_sends("room.member_left", left, room)] == [room_key("r"), user_key("b")]


def test_pages():
    """With after_seq (0 too): ascending from it; otherwise the newest before before_seq."""
    assert domain.page(3, None, 10) == domain.Page(after=3, before=None, limit=10, ascending=True)
    assert domain.page(0, None, 10) == domain.Page(after=0, before=None, limit=10, ascending=True)
    assert domain.page(None, 7, 5) == domain.Page(after=0, before=7, limit=5, ascending=False)


def test_announcements_name_users_by_name():
    """The texts use names, never ids."""
    joined = MemberJoined(room=INFO, user_id="b", user_name="Bob", invited_by="a", invited_by_name="Alice")
    assert domain.member_joined(joined) == "Alice added Bob"
    assert domain.room_announcement(joined) == "Alice added Bob"
    poll = a_poll(status="closed")
    assert "without votes" in domain.poll_closed(PollClosed(poll=poll, room_id="r", winner=None))
    assert "Sushi" in domain.poll_closed(PollClosed(poll=poll, room_id="r", winner="Sushi"))


def test_reschedule_choices_are_announced_as_times_people_read():
    """A reschedule poll's choices and winner read as dates, not ISO strings."""
    poll = a_poll(
        poll_type="reschedule",
        description="When?",
        choices=["2026-12-07T19:00:00.000Z", "2026-12-08T19:00:00.000Z"],
        status="closed",
        winner_index=1,
    )
    created = domain.poll_created(PollCreated(poll=poll, room_id="r", creator_name="Alice"))
    assert created == "Alice started a poll: When? (Mon 07 Dec 2026, 19:00 UTC, Tue 08 Dec 2026, 19:00 UTC)"
    closed = domain.poll_closed(PollClosed(poll=poll, room_id="r", winner="2026-12-08T19:00:00.000Z"))
    assert closed.endswith("Chosen: Tue 08 Dec 2026, 19:00 UTC")


def test_unread_is_the_items_after_the_mark_less_announcements_and_changes():
    assert domain.unread(last_seq=10, read=4, others=2) == 4
    assert domain.unread(last_seq=4, read=4, others=0) == 0
    assert domain.unread(last_seq=4, read=6, others=0) == 0  # a mark beyond the end reads nothing


def test_missed_items_are_those_after_the_users_own_latest_and_not_theirs():
    def item(seq: int, sender_id: str | None) -> RoomItem:
        kind = "message" if sender_id else "announcement"
        return RoomItem(id=str(seq), room_id="r", seq=seq, kind=kind, sender_id=sender_id, content="x", sent_at=NOW)

    items = [item(5, "ann"), item(6, "bob"), item(7, None), item(8, "ann")]
    assert [i.seq for i in domain.missed(items, "bob")] == [7, 8]  # his message read what came before
    assert [i.seq for i in domain.missed(items, "cid")] == [5, 6, 7, 8]
    assert [i.seq for i in domain.missed(items, "ann")] == []
    assert domain.missed([], "bob") == []


# Everyday chat: changes, without I/O ---------------------------------------------------------------

LATER = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)


def message(seq: int = 2, sender: str = "b", content: str = "hello", **more) -> RoomItem:
    return RoomItem(
        id=f"m{seq}", room_id="r", seq=seq, kind="message", sender_id=sender, content=content, sent_at=NOW, **more
    )


def entry(seq: int, kind, sender: str = "a", target: int = 2, content: str = "", emoji=None) -> RoomItem:
    return RoomItem(
        id=f"c{seq}",
        room_id="r",
        seq=seq,
        kind=kind,
        sender_id=sender,
        content=content,
        sent_at=LATER,
        target_seq=target,
        emoji=emoji,
    )


def test_a_change_is_an_entry_and_an_event_of_the_item_as_it_now_is():
    fact = domain.change(copy(), "a", message(), domain.Draft("reaction_added", emoji="👍"), [], "c3", 3, LATER)
    assert fact.type == "room.item_changed"
    assert fact.payload.change.target_seq == 2 and fact.payload.change.seq == 3
    assert fact.payload.item.reactions[0].user_ids == ["a"]
    [send] = fact.sends
    assert send.key == room_key("r") and send.event == "room.item_changed"
    with pytest.raises(domain.NotParticipantError):
        domain.change(copy(), "z", message(), domain.Draft("delete"), [], "c3", 3, LATER)


def test_what_each_change_may_do():
    item = message()
    window = timedelta(hours=1)
    assert domain.edit(item, "b", "hello", NOW, window) is None
    assert domain.edit(item, "b", "hi", NOW, window) == domain.Draft("edit", content="hi")
    with pytest.raises(domain.NotAllowedError):
        domain.edit(item, "a", "hi", NOW, window)
    with pytest.raises(domain.UnchangeableError):
        domain.edit(item, "b", "hi", NOW + timedelta(hours=2), window)
    announcement = item.model_copy(update={"kind": "announcement", "sender_id": None})
    for refused in (
        lambda: domain.edit(announcement, "b", "x", NOW, window),
        lambda: domain.delete(copy(), announcement, "a"),
    ):
        with pytest.raises(domain.UnchangeableError):
            refused()
    assert domain.delete(copy(), item, "a") == domain.Draft("delete")  # the room's creator
    with pytest.raises(domain.NotAllowedError):
        domain.delete(copy(), message(sender="a"), "b")
    gone = domain.tombstone(item, LATER)
    assert domain.delete(copy(), gone, "b") is None
    with pytest.raises(domain.NotAnItemError):
        domain.react(gone, "a", "👍")
    with pytest.raises(domain.NotAnItemError):
        domain.target(entry(3, "edit"))
    with pytest.raises(domain.ItemNotFoundError):
        domain.target(None)


def test_reactions_fold_in_order_and_are_bounded():
    item = message()
    for n, (kind, user, emoji) in enumerate(
        [
            ("reaction_added", "a", "👍"),
            ("reaction_added", "b", "🎉"),
            ("reaction_added", "b", "👍"),
            ("reaction_removed", "a", "👍"),
        ]
    ):
        item = domain.applied(item, entry(3 + n, kind, user, emoji=emoji))
    assert [(r.emoji, r.user_ids) for r in item.reactions] == [("👍", ["b"]), ("🎉", ["b"])]
    assert domain.react(item, "b", "👍") is None and domain.unreact(item, "a", "👍") is None
    full = message(reactions=[{"emoji": str(n), "user_ids": ["a"]} for n in range(domain.MAX_REACTIONS)])
    with pytest.raises(domain.UnchangeableError):
        domain.react(full, "b", "new")
    assert domain.react(full, "b", "0") == domain.Draft("reaction_added", emoji="0")
    assert domain.applied(full, entry(9, "reaction_added", "b", emoji="new")) == full  # two at once: left out


def test_an_items_state_is_the_same_in_any_order_and_a_delete_erases_edits():
    changes = [
        entry(3, "edit", "b", content="v2"),
        entry(4, "reaction_added", "a", emoji="👍"),
        entry(5, "edit", "b", content="v3"),
    ]
    forward, backward = domain.new_state("r", 2), domain.new_state("r", 2)
    for change in changes:
        assert domain.record(forward, change)
    for change in reversed(changes):
        domain.record(backward, change)
    assert forward == backward and not domain.record(forward, changes[0])
    shown = domain.shown(message(), forward)
    assert (shown.content, shown.edited_at, len(shown.reactions)) == ("v3", LATER, 1)
    assert [v.content for v in domain.history(message(), forward)] == ["hello", "v2", "v3"]
    domain.record(forward, entry(6, "delete", "b"))
    assert all(kept.content == "" for kept in forward.changes) and domain.history(message(), forward) == []
    late = domain.new_state("r", 2)
    domain.record(late, entry(6, "delete", "b"))
    domain.record(late, entry(3, "edit", "b", content="v2"))  # out of order: erased all the same
    assert [kept.content for kept in late.changes] == ["", ""]
    assert domain.shown(message(), late).deleted_at == LATER


def test_a_reply_quotes_and_follows_its_original():
    original = message(content="x" * 300)
    quoted = domain.quote(original)
    assert (quoted.seq, quoted.excerpt, quoted.sender_id) == (2, "x" * 200, "b")
    reply = message(seq=3, sender="a", content="yes", reply_to=quoted)
    edited = domain.requote(reply, "edit")
    assert edited is not None and edited.reply_to.edited and edited.reply_to.excerpt == "x" * 200
    assert domain.requote(edited, "edit") is None
    deleted = domain.requote(edited, "delete")
    assert deleted is not None and (deleted.reply_to.excerpt, deleted.reply_to.deleted) == ("", True)
    with pytest.raises(domain.NotAnItemError):
        domain.quote(domain.tombstone(original, LATER))
    state = domain.new_state("r", 3)
    assert domain.record_quote(state, "delete") and not domain.record_quote(state, "delete")
    assert domain.shown(reply, state).reply_to.excerpt == ""


def test_erasing_reaches_every_copy_of_the_text():
    original = message(content="secret")
    stored = {
        "item": original.model_dump(mode="json"),
        "deliveries": [{"body": {"data": {"item": original.model_dump(mode="json")}}}],
        "edit": entry(3, "edit", "b", content="secret 2").model_dump(mode="json"),
        "reply": message(seq=4, reply_to=domain.quote(original)).model_dump(mode="json"),
        "other": message(seq=5, content="secret too").model_dump(mode="json"),
    }
    erased = domain.erase(stored, original, "2026-01-01T00:05:00.000Z")
    text = str(erased)
    assert "secret too" in text and "secret'" not in text and "secret 2" not in text
    assert erased["item"]["deleted_at"] == "2026-01-01T00:05:00.000Z" and erased["reply"]["reply_to"]["deleted"]
    assert domain.erase(erased, original, "later") == erased


def test_mentions_are_of_members_and_the_room_only_when_small():
    fact = domain.send_message(copy(), "a", "hi", "i", 2, NOW, mentions=domain.Mentions(("b", "b")))
    assert fact.payload.item.mentions == ["b"]
    with pytest.raises(domain.MentionError) as refused:
        domain.send_message(copy(), "a", "hi", "i", 2, NOW, mentions=domain.Mentions(("z",)))
    assert refused.value.details == {"data.mentions": "not members of this room: z"}
    with pytest.raises(domain.MentionError):
        domain.send_message(copy(), "a", "hi", "i", 2, NOW, mentions=domain.Mentions(room=True, room_max=1))


def test_missed_and_unread_leave_out_changes():
    items = [message(seq=2, sender="b"), entry(3, "reaction_added", "b"), domain.tombstone(message(seq=4), LATER)]
    assert [i.seq for i in domain.missed(items, "a")] == [2]
    assert domain.targets_of([entry(5, "edit", target=2), entry(6, "delete", target=5)]) == [2]


def test_notification_levels_change_once():
    mark = domain.ReadMark(id="m", room_id="r", user_id="a")
    [fact] = domain.set_notifications(mark, "mentions")
    assert fact.type == "room.notifications_set" and fact.sends[0].key == user_key("a")
    assert domain.set_notifications(mark, "mentions") == [] and mark.notifications == "mentions"


def test_a_rename_is_announced_by_whom():
    room = INFO.model_copy(update={"name": "Attic"})
    assert domain.room_announcement(
        RoomUpdated(room=room, renamed_by="a", renamed_by_name="Alice", old_name="Den")
    ) == ("Alice renamed the room to Attic")
    assert domain.room_announcement(RoomUpdated(room=room)) is None
