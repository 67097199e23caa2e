"""Messaging's rules, without I/O."""

from datetime import UTC, datetime

import pytest

from contracts.events import MemberAdded, PollFinished
from contracts.shapes import Poll, Room, User
from workers.messaging import domain

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALICE = User(id="a", name="Alice")
ROOM = Room(id="r", name="Den", image_url=None, participant_ids=["a", "b"], created_by="a", created_at=NOW, last_seq=0)


def test_items_are_numbered_without_gaps():
    """Messages and announcements share one seq: 1, 2, 3."""
    timeline = domain.Timeline(id="r")
    first, _ = domain.send_message(timeline, ROOM, ALICE, "hi", "i1", NOW)
    domain.announce(timeline, ROOM, "Bob left", "e1", "i2", NOW)
    third, [fact] = domain.send_message(timeline, ROOM, ALICE, "bye", "i3", NOW)
    assert (first.seq, third.seq, timeline.last_seq) == (1, 3, 3)
    assert fact.payload.sender_name == "Alice" and fact.payload.participant_ids == ["a", "b"]
    assert fact.sends[0].key == "room.r"


def test_only_participants_send():
    """A sender not in the room is forbidden."""
    with pytest.raises(domain.NotParticipantError):
        domain.send_message(domain.Timeline(id="r"), ROOM, User(id="z", name="Z"), "hi", "i", NOW)


def test_an_event_is_announced_once():
    """The same cause twice makes one announcement."""
    timeline = domain.Timeline(id="r")
    assert domain.announce(timeline, ROOM, "x", "e1", "i1", NOW)
    assert domain.announce(timeline, ROOM, "x", "e1", "i2", NOW) == []
    assert timeline.last_seq == 1


def test_pages():
    """With after_seq: ascending from it; otherwise the newest before before_seq."""
    assert domain.page(3, None, 10) == domain.Page(after=3, before=None, limit=10, ascending=True)
    assert domain.page(None, 7, 5) == domain.Page(after=0, before=7, limit=5, ascending=False)


def test_announcements_name_users_by_name():
    """The texts use names, never ids."""
    joined = MemberAdded(room=ROOM, user_id="b", user_name="Bob", invited_by="a", invited_by_name="Alice")
    assert domain.member_joined(joined) == "Alice added Bob"
    poll = Poll(
        id="p",
        meetup_id="m",
        poll_type="generic",
        description="Food?",
        choices=["Pizza", "Sushi"],
        participant_ids=["a"],
        votes=[],
        status="closed",
        creator_id="a",
        created_at=NOW,
        winner_index=None,
    )
    assert "without votes" in domain.poll_closed(PollFinished(poll=poll, room_id="r", winner=None))
    assert "Sushi" in domain.poll_closed(PollFinished(poll=poll, room_id="r", winner="Sushi"))
