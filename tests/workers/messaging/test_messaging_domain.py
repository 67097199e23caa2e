"""Messaging's rules, without I/O."""

from datetime import UTC, datetime

import pytest
from support.shapes import a_poll

from contracts.events import MemberJoined, MemberLeft, PollClosed, PollCreated, RoomCreated, RoomInfo
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


def test_unread_is_the_items_after_the_mark_less_announcements():
    assert domain.unread(last_seq=10, read=4, announcements=2) == 4
    assert domain.unread(last_seq=4, read=4, announcements=0) == 0
    assert domain.unread(last_seq=4, read=6, announcements=0) == 0  # a mark beyond the end reads nothing


def test_missed_items_are_those_after_the_users_own_latest_and_not_theirs():
    def item(seq: int, sender_id: str | None) -> RoomItem:
        kind = "message" if sender_id else "announcement"
        return RoomItem(id=str(seq), room_id="r", seq=seq, kind=kind, sender_id=sender_id, content="x", sent_at=NOW)

    items = [item(5, "ann"), item(6, "bob"), item(7, None), item(8, "ann")]
    assert [i.seq for i in domain.missed(items, "bob")] == [7, 8]  # his message read what came before
    assert [i.seq for i in domain.missed(items, "cid")] == [5, 6, 7, 8]
    assert [i.seq for i in domain.missed(items, "ann")] == []
    assert domain.missed([], "bob") == []
