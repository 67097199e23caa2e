"""The polls domain: pure rules, no I/O."""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime

import pytest

from contracts.events import ParticipantRemoved, PollClosed, PollCreated, VoteCast
from contracts.frames import PollFrame, VoteCastFrame
from contracts.internal import MeetupAccessReply
from contracts.requests import CreatePoll
from contracts.routing import user_key
from contracts.shapes import User
from workers.polls import domain

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
MEETUP = MeetupAccessReply(meetup_id="m1", room_id="r1", organizer_id="org", attendee_ids=["org", "ann", "bob"])


def new_poll(choices: tuple[str, ...] = ("Pizza", "Sushi", "Tacos"), creator: str = "ann") -> domain.PollState:
    data = CreatePoll(meetup_id="m1", poll_type="generic", description="Dinner?", choices=list(choices))
    state, _ = domain.open_poll("p1", MEETUP, User(id=creator, name=creator.title()), data, NOW)
    return state


def keys(fact) -> list[str]:
    return [send.key for send in fact.sends]


def test_errors_share_one_base_with_codes():
    """Every domain error is a PollsError carrying its PROTOCOL.md code."""
    errors = {
        domain.PollNotFoundError(): "not_found",
        domain.NotParticipantError(): "forbidden",
        domain.NotCloserError(): "forbidden",
        domain.ChoiceOutOfRangeError(2): "bad_request",
        domain.AlreadyVotedError(): "conflict",
        domain.PollClosedError(): "conflict",
    }
    assert all(isinstance(e, domain.PollsError) and e.code == code for e, code in errors.items())
    assert domain.ChoiceOutOfRangeError(2).details == {"data.choice_index": "must be less than 2"}


def test_domain_is_sans_io():
    """The domain imports the standard library and contracts only."""
    tree = ast.parse(inspect.getsource(domain))
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert all(m.split(".")[0] in {"__future__", "dataclasses", "datetime", "contracts"} for m in modules), modules
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import)]


def test_missing_poll_is_not_found():
    """A poll id that does not exist is not_found."""
    with pytest.raises(domain.PollNotFoundError):
        domain.existing(None)


def test_open_poll_takes_the_attendees_as_participants():
    """Participants are the meetup's attendees now; poll.created goes to each of them."""
    data = CreatePoll(meetup_id="m1", poll_type="relocate", description="Where?", choices=["Beach", "Park"])
    state, [fact] = domain.open_poll("p1", MEETUP, User(id="ann", name="Ann"), data, NOW)
    poll = state.view()
    assert (poll.participant_ids, poll.status, poll.votes, poll.winner_index) == (
        ["org", "ann", "bob"],
        "open",
        [],
        None,
    )
    assert (poll.creator_id, poll.created_at, state.room_id) == ("ann", NOW, "r1")
    assert fact.type == "poll.created" and isinstance(fact.payload, PollCreated)
    assert (fact.payload.creator_name, fact.payload.room_id) == ("Ann", "r1")
    assert keys(fact) == [user_key(i) for i in ("org", "ann", "bob")]
    assert all(s.event == "poll.created" and s.data == PollFrame(poll=poll) for s in fact.sends)


def test_vote_is_sent_to_participants():
    """A vote is recorded and poll.vote_cast goes to every participant."""
    state = new_poll()
    [fact] = domain.vote(state, "bob", 2)
    assert fact.type == "poll.vote_cast" and isinstance(fact.payload, VoteCast)
    assert (fact.payload.user_id, fact.payload.choice_index, fact.payload.room_id) == ("bob", 2, "r1")
    assert keys(fact) == [user_key(i) for i in ("org", "ann", "bob")]
    assert fact.sends[0].data == VoteCastFrame(poll_id="p1", meetup_id="m1", user_id="bob", choice_index=2)
    assert state.status == "open"


def test_vote_error_precedence():
    """forbidden (not a participant), then bad_request (index out of range), then conflict."""
    state = new_poll()
    for user in ("org", "ann", "bob"):
        domain.vote(state, user, 0)
    assert state.status == "closed"
    with pytest.raises(domain.NotParticipantError):
        domain.vote(state, "eve", 9)
    with pytest.raises(domain.ChoiceOutOfRangeError):
        domain.vote(state, "ann", 3)
    with pytest.raises(domain.PollClosedError):
        domain.vote(state, "ann", 1)


def test_second_vote_is_a_conflict():
    """One vote each."""
    state = new_poll()
    domain.vote(state, "ann", 0)
    with pytest.raises(domain.AlreadyVotedError):
        domain.vote(state, "ann", 1)


def test_last_vote_closes_in_the_same_command():
    """When everyone has voted: poll.vote_cast (with the closed poll), then poll.closed."""
    state = new_poll()
    domain.vote(state, "org", 1)
    domain.vote(state, "ann", 0)
    cast, closed = domain.vote(state, "bob", 1)
    assert (cast.type, closed.type) == ("poll.vote_cast", "poll.closed")
    assert cast.payload.poll.status == "closed" and cast.payload.poll.winner_index == 1
    assert isinstance(closed.payload, PollClosed) and closed.payload.winner == "Sushi"
    assert keys(closed) == [user_key(i) for i in ("org", "ann", "bob")]
    assert all(s.event == "poll.closed" and s.data.poll.winner_index == 1 for s in closed.sends)


def test_only_a_vote_on_a_closed_poll_needs_the_meetups_attendees():
    """A closed poll keeps a participant who left since; an open one has already dropped them."""
    state = new_poll()
    assert not domain.vote_needs_attendance(state)
    for voter in ("org", "ann", "bob"):
        domain.vote(state, voter, 0)
    assert domain.vote_needs_attendance(state)
    assert domain.remove_participant(state, "bob") == [] and "bob" in state.participant_ids


def test_ties_go_to_the_lowest_index_and_no_votes_no_winner():
    """Winner: most votes, ties to the lowest index, None when nobody voted."""
    state = new_poll()
    domain.vote(state, "ann", 2)
    domain.vote(state, "bob", 1)
    [closed] = domain.close(state, "ann", MEETUP)
    assert state.winner_index == 1 and closed.payload.winner == "Sushi"
    empty = new_poll()
    [closed] = domain.close(empty, "ann", MEETUP)
    assert empty.winner_index is None and closed.payload.winner is None and empty.status == "closed"


def test_close_by_creator_or_organizer_only():
    """The creator or the organizer may close; anyone else is forbidden; a closed poll is a conflict."""
    with pytest.raises(domain.NotCloserError):
        domain.close(new_poll(), "bob", MEETUP)
    assert domain.close(new_poll(creator="ann"), "ann", MEETUP)
    state = new_poll()
    assert domain.close(state, "org", MEETUP)
    with pytest.raises(domain.PollClosedError):
        domain.close(state, "org", MEETUP)
    with pytest.raises(domain.NotCloserError):  # forbidden wins over conflict
        domain.close(state, "bob", MEETUP)


def test_leaver_is_removed_and_their_vote_counts():
    """A participant who leaves is out of the open poll; a vote already cast still counts."""
    state = new_poll()
    domain.vote(state, "bob", 2)
    [removed] = domain.remove_participant(state, "bob")
    assert removed.type == "poll.participant_removed" and isinstance(removed.payload, ParticipantRemoved)
    assert removed.sends == () and removed.payload.user_id == "bob"
    assert state.participant_ids == ["org", "ann"] and len(state.votes) == 1 and state.status == "open"


def test_leaving_twice_or_a_closed_poll_changes_nothing():
    """Removal is idempotent and leaves closed polls alone."""
    state = new_poll()
    domain.remove_participant(state, "bob")
    assert domain.remove_participant(state, "bob") == []
    domain.close(state, "org", MEETUP)
    assert domain.remove_participant(state, "ann") == []


def test_leaving_can_close_the_poll():
    """When everyone left has voted the poll closes, the winner from the votes cast."""
    state = new_poll()
    domain.vote(state, "org", 2)
    domain.vote(state, "ann", 2)
    removed, closed = domain.remove_participant(state, "bob")
    assert (removed.type, closed.type) == ("poll.participant_removed", "poll.closed")
    assert state.winner_index == 2 and closed.payload.winner == "Tacos"
    assert keys(closed) == [user_key("org"), user_key("ann")]


def test_last_participant_leaving_closes_the_poll():
    """No participant left: the poll closes, with the votes of those who left."""
    state = new_poll()
    domain.vote(state, "bob", 1)
    for user in ("bob", "org"):
        assert len(domain.remove_participant(state, user)) == 1
    *_, closed = domain.remove_participant(state, "ann")
    assert closed.type == "poll.closed" and state.winner_index == 1 and closed.sends == ()
