"""Rooms' rules, without I/O."""

from datetime import UTC, datetime

import pytest

from contracts.shapes import User
from workers.rooms import domain

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALICE, BOB, CAROL = User(id="a", name="Alice"), User(id="b", name="Bob"), User(id="c", name="Carol")
KNOWN = {u.id: u for u in (ALICE, BOB, CAROL)}


def room(*members: User) -> domain.RoomState:
    state, _ = domain.open_room("r", members[0], "Den", None, [m.id for m in members[1:]], KNOWN, NOW)
    return state


def test_open_room_ignores_duplicates_and_the_creator():
    """Participants: the creator, then the invited in order, once each."""
    state, [fact] = domain.open_room("r", ALICE, "Den", None, ["b", "a", "b", "c"], KNOWN, NOW)
    assert state.participant_ids == ["a", "b", "c"]
    assert fact.type == "room.created" and fact.payload.names == {"a": "Alice", "b": "Bob", "c": "Carol"}
    assert fact.sends == (), "what members see of it is messaging's"


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


def test_rename_and_image_only_when_changed():
    """No fact when the value is the same."""
    state = room(ALICE)
    assert domain.rename(state, "a", "Den") == []
    assert [f.type for f in domain.rename(state, "a", "Attic")] == ["room.updated"]
    assert domain.change_image(state, "a", "https://x.org/a.png")
    assert domain.change_image(state, "a", "https://x.org/a.png") == []
    with pytest.raises(domain.NotParticipantError):
        domain.rename(state, "b", "Mine")


def test_leave_names_the_leaver_and_the_room_without_them():
    """room.member_left carries the room as the leave left it, and the leaver's name."""
    state = room(ALICE, BOB)
    [fact] = domain.leave(state, BOB)
    assert state.participant_ids == ["a"]
    assert fact.payload.room.participant_ids == ["a"] and fact.payload.user_name == "Bob"
    with pytest.raises(domain.NotParticipantError):
        domain.leave(state, BOB)


def test_readable_hides_foreign_and_missing_rooms():
    """Missing: not_found; not a member: forbidden."""
    with pytest.raises(domain.RoomNotFoundError):
        domain.readable(None, "a")
    with pytest.raises(domain.NotParticipantError):
        domain.readable(room(ALICE), "b")
