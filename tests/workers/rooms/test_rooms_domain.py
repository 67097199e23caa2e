"""Rooms' rules, without I/O."""

from datetime import UTC, datetime

import pytest

from contracts.shapes import RoomItem, User
from workers.rooms import domain

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALICE, BOB, CAROL = User(id="a", name="Alice"), User(id="b", name="Bob"), User(id="c", name="Carol")
KNOWN = {u.id: u for u in (ALICE, BOB, CAROL)}


def room(*members: User) -> domain.RoomState:
    state, _ = domain.open_room("r", members[0], "Den", None, [m.id for m in members[1:]], KNOWN, NOW)
    return state


def message(seq: int, sender: str | None = "a", kind: str = "message") -> RoomItem:
    return RoomItem(id=str(seq), room_id="r", seq=seq, kind=kind, sender_id=sender, content="x", sent_at=NOW)


def test_open_room_ignores_duplicates_and_the_creator():
    """Participants: the creator, then the invited in order, once each."""
    state, [fact] = domain.open_room("r", ALICE, "Den", None, ["b", "a", "b", "c"], KNOWN, NOW)
    assert state.participant_ids == ["a", "b", "c"]
    assert fact.type == "room.created" and len(fact.sends) == 3
    assert state.read_marks == {"a": 0, "b": 0, "c": 0}


def test_open_room_with_unknown_users():
    """Unknown users are not_found."""
    with pytest.raises(domain.UnknownUserError):
        domain.open_room("r", ALICE, "Den", None, ["zed"], KNOWN, NOW)


def test_invite_rules():
    """Only participants invite; known users only; not twice."""
    state = room(ALICE)
    with pytest.raises(domain.NotParticipantError):
        domain.invite(state, BOB, "c", CAROL)
    with pytest.raises(domain.UnknownUserError):
        domain.invite(state, ALICE, "zed", None)
    domain.invite(state, ALICE, "b", BOB)
    with pytest.raises(domain.AlreadyParticipantError):
        domain.invite(state, ALICE, "b", BOB)


def test_invitee_mark_starts_at_the_latest_item_and_returning_members_keep_theirs():
    """The newcomer's mark is the latest seq; a returner keeps the later of that and their old mark."""
    state = room(ALICE, BOB)
    state.last_seq = 5
    domain.mark_read(state, "b", 5)
    domain.leave(state, BOB)
    state.last_seq = 3  # only possible in a test: shows max() is taken
    domain.invite(state, ALICE, "b", BOB)
    assert state.read_marks["b"] == 5
    domain.invite(state, ALICE, "c", CAROL)
    assert state.read_marks["c"] == 3


def test_mark_read_moves_forward_only():
    """Without seq or beyond the end: the latest item; backwards: no fact."""
    state = room(ALICE)
    state.last_seq = 3
    assert [f.payload.last_read_seq for f in domain.mark_read(state, "a", 2)] == [2]
    assert domain.mark_read(state, "a", 1) == []
    assert [f.payload.last_read_seq for f in domain.mark_read(state, "a", 99)] == [3]
    assert domain.mark_read(state, "a", None) == []


def test_sending_moves_the_senders_mark():
    """A message moves its sender's mark; an announcement moves none."""
    state = room(ALICE, BOB)
    assert domain.message_sent(state, message(1, sender=None, kind="announcement")) == []
    [fact] = domain.message_sent(state, message(2, sender="b"))
    assert fact.payload.user_id == "b" and state.read_marks["b"] == 2
    assert domain.message_sent(state, message(1, sender="b")) == [], "the mark never moves back"


def test_rename_and_image_only_when_changed():
    """No fact when the value is the same."""
    state = room(ALICE)
    assert domain.rename(state, "a", "Den") == []
    assert [f.type for f in domain.rename(state, "a", "Attic")] == ["room.updated"]
    assert domain.change_image(state, "a", "https://x.org/a.png")
    assert domain.change_image(state, "a", "https://x.org/a.png") == []
    with pytest.raises(domain.NotParticipantError):
        domain.rename(state, "b", "Mine")


def test_leave_sends_member_left_to_the_room_and_the_leaver():
    """room.member_left goes to the room's key and the leaver's own key."""
    state = room(ALICE, BOB)
    [fact] = domain.leave(state, BOB)
    assert state.participant_ids == ["a"]
    assert {s.key for s in fact.sends} == {"room.r", fact.sends[1].key} and len(fact.sends) == 2
    with pytest.raises(domain.NotParticipantError):
        domain.leave(state, BOB)


def test_readable_hides_foreign_and_missing_rooms():
    """Missing: not_found; not a member: forbidden."""
    with pytest.raises(domain.RoomNotFoundError):
        domain.readable(None, "a")
    with pytest.raises(domain.NotParticipantError):
        domain.readable(room(ALICE), "b")
