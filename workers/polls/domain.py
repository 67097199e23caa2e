"""Polls: state and rules, sans-I/O. Commands in, facts out, or a ``PollsError``.

Each poll is one aggregate, so two last votes racing are decided by the write of one document: the
poll closes exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.envelope import Fact, Send
from contracts.errors import Rejected
from contracts.events import ParticipantRemoved, PollClosed, PollCreated, VoteCast
from contracts.frames import PollFrame, VoteCastFrame
from contracts.internal import MeetupAccessReply
from contracts.requests import CreatePoll
from contracts.routing import user_key
from contracts.shapes import Poll, PollStatus, PollType, User, Vote


class PollsError(Rejected):
    pass


class PollNotFoundError(PollsError):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("no such poll")


class NotParticipantError(PollsError):
    code = "forbidden"

    def __init__(self) -> None:
        super().__init__("not a participant of this poll")


class NotCloserError(PollsError):
    code = "forbidden"

    def __init__(self) -> None:
        super().__init__("only the poll's creator or the meetup's organizer can close it")


class ChoiceOutOfRangeError(PollsError):
    code = "bad_request"

    def __init__(self, count: int) -> None:
        super().__init__("no such choice", {"data.choice_index": f"must be less than {count}"})


class AlreadyVotedError(PollsError):
    code = "conflict"

    def __init__(self) -> None:
        super().__init__("already voted in this poll")


class PollClosedError(PollsError):
    code = "conflict"

    def __init__(self) -> None:
        super().__init__("this poll is closed")


# State ----------------------------------------------------------------------------------------


@dataclass
class PollState:
    id: str
    meetup_id: str
    room_id: str
    poll_type: PollType
    description: str
    choices: list[str]
    participant_ids: list[str]
    creator_id: str
    created_at: datetime
    votes: list[Vote] = field(default_factory=list)
    status: PollStatus = "open"
    winner_index: int | None = None

    def view(self) -> Poll:
        return Poll(
            id=self.id,
            meetup_id=self.meetup_id,
            poll_type=self.poll_type,
            description=self.description,
            choices=list(self.choices),
            participant_ids=list(self.participant_ids),
            votes=list(self.votes),
            status=self.status,
            creator_id=self.creator_id,
            created_at=self.created_at,
            winner_index=self.winner_index,
        )

    def voted(self, user_id: str) -> bool:
        return any(vote.user_id == user_id for vote in self.votes)

    def winner(self) -> int | None:
        """Most votes, ties to the lowest index, None when nobody voted."""
        counts = [0] * len(self.choices)
        for vote in self.votes:
            counts[vote.choice_index] += 1
        return counts.index(max(counts)) if self.votes else None


def existing(state: PollState | None) -> PollState:
    if state is None:
        raise PollNotFoundError()
    return state


def _to_participants(state: PollState, event: str, data: PollFrame | VoteCastFrame) -> tuple[Send, ...]:
    return tuple(Send(user_key(i), event, data) for i in state.participant_ids)


# Commands -------------------------------------------------------------------------------------


def open_poll(
    poll_id: str, meetup: MeetupAccessReply, creator: User, data: CreatePoll, now: datetime
) -> tuple[PollState, list[Fact]]:
    """A new poll of ``meetup`` (which ``creator`` attends): its participants are the attendees now."""
    state = PollState(
        id=poll_id,
        meetup_id=meetup.meetup_id,
        room_id=meetup.room_id,
        poll_type=data.poll_type,
        description=data.description,
        choices=list(data.choices),
        participant_ids=list(meetup.attendee_ids),
        creator_id=creator.id,
        created_at=now,
    )
    poll = state.view()
    payload = PollCreated(poll=poll, room_id=state.room_id, creator_name=creator.name)
    sends = _to_participants(state, "poll.created", PollFrame(poll=poll))
    return state, [Fact("poll.created", poll_id, payload, sends)]


def vote_needs_attendance(state: PollState) -> bool:
    """Whether a vote must first be checked against the meetup's attendees: a closed poll keeps its
    participants, leavers included (only open polls lose them), so only the meetup knows whether a
    voter still belongs. Such a vote fails either way: a leaver's as ``forbidden`` (it says nothing
    of the poll), anyone else's as a conflict. An open poll's participants say it all."""
    return state.status == "closed"


def vote(state: PollState, user_id: str, choice_index: int) -> list[Fact]:
    """Participants vote once while the poll is open; the last vote closes it in the same command."""
    if user_id not in state.participant_ids:
        raise NotParticipantError()
    if choice_index >= len(state.choices):
        raise ChoiceOutOfRangeError(len(state.choices))
    if state.status == "closed":
        raise PollClosedError()
    if state.voted(user_id):
        raise AlreadyVotedError()
    state.votes.append(Vote(user_id=user_id, choice_index=choice_index))
    closed = _close_if_complete(state)
    cast = VoteCastFrame(poll_id=state.id, meetup_id=state.meetup_id, user_id=user_id, choice_index=choice_index)
    payload = VoteCast(poll=state.view(), room_id=state.room_id, user_id=user_id, choice_index=choice_index)
    return [Fact("poll.vote_cast", state.id, payload, _to_participants(state, "poll.vote_cast", cast)), *closed]


def close(state: PollState, user_id: str, meetup: MeetupAccessReply) -> list[Fact]:
    """By its creator or the meetup's organizer (``meetup`` says ``user_id`` attends it)."""
    if user_id not in (state.creator_id, meetup.organizer_id):
        raise NotCloserError()
    if state.status == "closed":
        raise PollClosedError()
    return _close(state)


# Reactions ------------------------------------------------------------------------------------


def remove_participant(state: PollState, user_id: str) -> list[Fact]:
    """``user_id`` left the meetup's room: out of the open poll (a vote cast still counts), which
    closes when everyone left has voted, or nobody is left."""
    if state.status == "closed" or user_id not in state.participant_ids:
        return []
    state.participant_ids.remove(user_id)
    closed = _close_if_complete(state)
    payload = ParticipantRemoved(poll=state.view(), room_id=state.room_id, user_id=user_id)
    return [Fact("poll.participant_removed", state.id, payload), *closed]


def _close_if_complete(state: PollState) -> list[Fact]:
    if all(state.voted(i) for i in state.participant_ids):
        return _close(state)
    return []


def _close(state: PollState) -> list[Fact]:
    state.status = "closed"
    state.winner_index = state.winner()
    poll = state.view()
    winner = state.choices[state.winner_index] if state.winner_index is not None else None
    payload = PollClosed(poll=poll, room_id=state.room_id, winner=winner)
    return [Fact("poll.closed", state.id, payload, _to_participants(state, "poll.closed", PollFrame(poll=poll)))]
