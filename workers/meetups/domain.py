"""Meetups: state and rules, sans-I/O. Commands in, facts out, or a ``MeetupsError``.

A meetup keeps a replica of its polls (snapshots from the polls worker's events, applied only when
their aggregate version is newer) because alerts and moves are derived from them.

Reminders (PROTOCOL.md, Calendars and reminders): ``schedule`` says which a meetup should have (the
worker keeps them in a collection of due reminders), ``remind`` decides one when it is due. The
meetup records each reminder it sent (``reminded``, by lead time and start), so however often a due
reminder is handled (two replicas, a crash and a restart) its events are committed once.

Each user has a ``CalendarOwner``: their calendar feed's secret token and whether they get reminders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from contracts.common import format_time, parse_time
from contracts.envelope import Fact, Send
from contracts.errors import Rejected
from contracts.events import (
    CalendarFeedReset,
    MeetupCancelled,
    MeetupCreated,
    MeetupMoved,
    MeetupReminderDue,
    MeetupUpdated,
    RemindersSet,
    RoomInfo,
)
from contracts.frames import MeetupFrame, MeetupReminderFrame
from contracts.requests import CreateMeetup
from contracts.routing import user_key
from contracts.shapes import ALERT_OF_POLL, Alert, Attendee, Meetup, Poll, ReminderKind, Rsvp, User

DEFAULT_LENGTH = timedelta(hours=2)  # a meetup created without ``ends_on``, or before it existed
NUDGE_LEAD = 24 * 3600  # seconds before the start when those who have not answered are nudged
REMINDED: dict[ReminderKind, tuple[Rsvp, ...]] = {"reminder": ("yes", "maybe"), "nudge": ("not_responded",)}

T = TypeVar("T")


class MeetupsError(Rejected):
    pass


class MeetupNotFoundError(MeetupsError):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("no such meetup")


class NotAttendeeError(MeetupsError):
    code = "forbidden"

    def __init__(self) -> None:
        super().__init__("not an attendee of this meetup")


class NotOrganizerError(MeetupsError):
    code = "forbidden"

    def __init__(self) -> None:
        super().__init__("only the organizer may cancel this meetup")


class AlreadyCancelledError(MeetupsError):
    code = "conflict"

    def __init__(self) -> None:
        super().__init__("this meetup is cancelled already")


class FeedNotFoundError(MeetupsError):
    """An unknown or revoked feed token, or a meetup its owner does not attend: it says nothing more."""

    code = "not_found"

    def __init__(self) -> None:
        super().__init__("not found")


class UnknownUserError(MeetupsError):
    code = "not_found"

    def __init__(self, user_ids: list[str]) -> None:
        super().__init__("unknown user: " + ", ".join(sorted(user_ids)[:10]))


# State ----------------------------------------------------------------------------------------


@dataclass
class MeetupState:
    id: str
    room_id: str
    name: str
    organizer_id: str
    location: str
    takes_place_on: datetime
    image_url: str | None
    created_at: datetime
    attendees: list[Attendee]
    polls: list[Poll] = field(default_factory=list)  # oldest first
    poll_versions: dict[str, int] = field(default_factory=dict)  # poll id -> version of its snapshot
    room_version: int = 0  # version of the last room membership snapshot applied
    # Added in v1.2; None in meetups stored before: they end ``DEFAULT_LENGTH`` after they start.
    ends_on: datetime | None = None
    time_zone: str = "UTC"
    cancelled_at: datetime | None = None
    sequence: int = 0  # calendars' SEQUENCE: one more at each move and at the cancellation
    reminded: list[str] = field(default_factory=list)  # ``Reminder.key`` of each reminder sent

    @property
    def ends(self) -> datetime:
        return self.ends_on or self.takes_place_on + DEFAULT_LENGTH

    @property
    def attendee_ids(self) -> list[str]:
        return [a.user_id for a in self.attendees]

    def alerts(self, user_id: str) -> list[Alert]:
        return alerts(self.id, self.polls, user_id)

    def view(self, user_id: str | None = None) -> Meetup:
        """The meetup as ``user_id`` sees it (with their alerts); without one, with no alerts."""
        return Meetup(
            id=self.id,
            room_id=self.room_id,
            name=self.name,
            organizer_id=self.organizer_id,
            location=self.location,
            takes_place_on=self.takes_place_on,
            image_url=self.image_url,
            attendees=list(self.attendees),
            polls=list(self.polls),
            alerts=self.alerts(user_id) if user_id is not None else [],
            ends_on=self.ends,
            time_zone=self.time_zone,
            cancelled_at=self.cancelled_at,
        )

    def updated(self) -> MeetupUpdated:
        return MeetupUpdated(meetup=self.view(), created_at=self.created_at, sequence=self.sequence)

    def require_attendee(self, user_id: str) -> None:
        if user_id not in self.attendee_ids:
            raise NotAttendeeError()


def alerts(meetup_id: str, polls: list[Poll], user_id: str) -> list[Alert]:
    """One per open poll in which ``user_id`` is a participant and has not voted."""
    return [
        Alert(type=ALERT_OF_POLL[poll.poll_type], meetup_id=meetup_id, poll_id=poll.id)
        for poll in polls
        if poll.status == "open"
        and user_id in poll.participant_ids
        and all(vote.user_id != user_id for vote in poll.votes)
    ]


def seen_by(meetup: Meetup | None, user_id: str) -> Meetup:
    """A meetup as its attendee ``user_id`` sees it, with their alerts (queries read this)."""
    if meetup is None:
        raise MeetupNotFoundError()
    if user_id not in [a.user_id for a in meetup.attendees]:
        raise NotAttendeeError()
    return meetup.model_copy(update={"alerts": alerts(meetup.id, meetup.polls, user_id)})


def readable(state: MeetupState | None, user_id: str) -> MeetupState:
    """The meetup, for an attendee; the error never carries its content."""
    if state is None:
        raise MeetupNotFoundError()
    state.require_attendee(user_id)
    return state


def _updated(state: MeetupState, recipients: Iterable[str], type: str = "meetup.updated") -> tuple[Send, ...]:
    """Per recipient: the meetup carries that user's alerts."""
    return tuple(Send(user_key(i), type, MeetupFrame(meetup=state.view(i))) for i in dict.fromkeys(recipients))


def _changed(state: MeetupState, recipients: Iterable[str]) -> Fact:
    return Fact("meetup.updated", state.id, state.updated(), _updated(state, recipients))


# Commands -------------------------------------------------------------------------------------


def invitees(organizer_id: str, attendee_ids: list[str], known: dict[str, User]) -> list[str]:
    """The attendees to invite: duplicates and the organizer ignored, all known users."""
    others = [i for i in dict.fromkeys(attendee_ids) if i != organizer_id]
    if missing := [i for i in [organizer_id, *others] if i not in known]:
        raise UnknownUserError(missing)
    return others


def open_meetup(
    meetup_id: str, room: RoomInfo, organizer: User, data: CreateMeetup, now: datetime
) -> tuple[MeetupState, list[Fact]]:
    """A new meetup whose attendees are its room's participants; the organizer says yes."""
    attendees = [
        Attendee(user_id=i, rsvp="yes" if i == organizer.id else "not_responded") for i in room.participant_ids
    ]
    state = MeetupState(
        id=meetup_id,
        room_id=room.id,
        name=data.name,
        organizer_id=organizer.id,
        location=data.location,
        takes_place_on=data.takes_place_on,
        image_url=data.image_url,
        created_at=now,
        attendees=attendees,
        ends_on=data.ends_on or data.takes_place_on + DEFAULT_LENGTH,
        time_zone=data.time_zone,
    )
    payload = MeetupCreated(meetup=state.view(), created_at=state.created_at, organizer_name=organizer.name)
    return state, [Fact("meetup.created", meetup_id, payload, _updated(state, state.attendee_ids, "meetup.created"))]


def change_rsvp(state: MeetupState, user_id: str, rsvp: Rsvp) -> list[Fact]:
    state.require_attendee(user_id)
    index = state.attendee_ids.index(user_id)
    if state.attendees[index].rsvp == rsvp:
        return []
    state.attendees[index] = Attendee(user_id=user_id, rsvp=rsvp)
    return [_changed(state, state.attendee_ids)]


def change_image(state: MeetupState, user_id: str, image_url: str) -> list[Fact]:
    state.require_attendee(user_id)
    if image_url == state.image_url:
        return []
    state.image_url = image_url
    return [_changed(state, state.attendee_ids)]


def cancel(state: MeetupState, organizer: User, now: datetime) -> list[Fact]:
    """The organizer cancels: every attendee gets the meetup with ``cancelled_at``; messaging
    announces ``meetup.cancelled`` in the room."""
    state.require_attendee(organizer.id)
    if organizer.id != state.organizer_id:
        raise NotOrganizerError()
    if state.cancelled_at is not None:
        raise AlreadyCancelledError()
    state.cancelled_at, state.sequence = now, state.sequence + 1
    cancelled = MeetupCancelled(
        meetup=state.view(),
        created_at=state.created_at,
        sequence=state.sequence,
        cancelled_by=organizer.id,
        cancelled_by_name=organizer.name,
    )
    return [Fact("meetup.cancelled", state.id, cancelled, _updated(state, state.attendee_ids))]


# Reminders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reminder:
    """One lead time of a meetup starting at ``starts_at``: due ``lead_seconds`` before it."""

    meetup_id: str
    lead_seconds: int
    starts_at: datetime

    @property
    def due_at(self) -> datetime:
        return self.starts_at - timedelta(seconds=self.lead_seconds)

    @property
    def key(self) -> str:
        """What the meetup records once this reminder is sent: moved, it is reminded of again."""
        return f"{self.lead_seconds}@{format_time(self.starts_at)}"


def schedule(meetup: Meetup, leads: tuple[int, ...], planned: list[Reminder], now: datetime) -> list[Reminder]:
    """The reminders ``meetup`` should have now that ``planned`` are: for each lead time (and the
    nudge's), the one planned for its current start stays as it is (sent or not); one for a new start
    is planned unless already due at ``now`` (when the meetup was created or moved). None when
    cancelled."""
    if meetup.cancelled_at is not None:
        return []
    kept = {r.lead_seconds: r for r in planned if r.starts_at == meetup.takes_place_on}
    wanted = [Reminder(meetup.id, lead, meetup.takes_place_on) for lead in sorted({*leads, NUDGE_LEAD}, reverse=True)]
    return [kept.get(r.lead_seconds, r) for r in wanted if r.lead_seconds in kept or r.due_at > now]


def remind(
    state: MeetupState, reminder: Reminder, leads: tuple[int, ...], opted_out: set[str], now: datetime
) -> list[Fact]:
    """The reminders and nudges ``reminder`` sends now (a ``meetup.reminder_due`` per kind, with a
    ``meetup.reminder`` to each of its users); none when it was sent already, the meetup moved since it
    was planned, was cancelled or has started, or a shorter lead time is due too (it was not sent in
    time: the shorter one goes instead). Those in ``opted_out`` turned reminders off."""
    shorter_due = any(
        lead < reminder.lead_seconds and now >= state.takes_place_on - timedelta(seconds=lead)
        for lead in {*leads, NUDGE_LEAD}
    )
    if (
        reminder.key in state.reminded
        or reminder.starts_at != state.takes_place_on
        or state.cancelled_at is not None
        or now >= state.takes_place_on
        or shorter_due
    ):
        return []
    state.reminded.append(reminder.key)
    lead = reminder.lead_seconds
    sent: dict[ReminderKind, bool] = {"reminder": lead in leads, "nudge": lead == NUDGE_LEAD}
    facts = []
    for kind in [k for k, on in sent.items() if on]:
        users = [a.user_id for a in state.attendees if a.rsvp in REMINDED[kind] and a.user_id not in opted_out]
        if not users:
            continue
        text = reminder_text(state, kind, lead)
        due = MeetupReminderDue(meetup=state.view(), kind=kind, lead_seconds=lead, user_ids=users, text=text)
        frames = {i: MeetupReminderFrame(meetup=state.view(i), kind=kind, lead_seconds=lead) for i in users}
        sends = tuple(Send(user_key(i), "meetup.reminder", frame) for i, frame in frames.items())
        facts.append(Fact("meetup.reminder_due", state.id, due, sends))
    return facts


def reminder_text(state: MeetupState, kind: ReminderKind, lead_seconds: int) -> str:
    """A push's body: when (in the meetup's time zone) and where."""
    when = state.takes_place_on.astimezone(ZoneInfo(state.time_zone)).strftime("%a %d %b %Y, %H:%M %Z")
    if kind == "nudge":
        return f"{state.name} is in {span(lead_seconds)} ({when}, {state.location}). Are you going?"
    return f"{state.name} starts in {span(lead_seconds)}: {when}, {state.location}"


def span(seconds: int) -> str:
    """``86400`` -> ``24 hours``; ``5400`` -> ``90 minutes``."""
    amount, unit = (seconds // 3600, "hour") if seconds % 3600 == 0 else (seconds // 60, "minute")
    return f"{amount} {unit}{'' if amount == 1 else 's'}"


# Calendar feeds -------------------------------------------------------------------------------


@dataclass
class CalendarOwner:
    """A user's calendar feed (its secret ``token``) and whether they get reminders."""

    id: str  # the user's id
    token: str
    reminders: bool = True


def feed_owner(owner: CalendarOwner | None) -> CalendarOwner:
    if owner is None:
        raise FeedNotFoundError()
    return owner


def in_file(found: list[T], meetup_id: str | None) -> list[T]:
    """What a calendar file holds: the owner's meetups ``found``; asked for one (``meetup_id``), the
    owner must attend it (else not found, as for an unknown token)."""
    if meetup_id is not None and not found:
        raise FeedNotFoundError()
    return found


def reset_feed(owner: CalendarOwner, token: str) -> list[Fact]:
    """A new address for the feed: the old token stops working."""
    owner.token = token
    return [Fact("meetup.calendar_feed_reset", owner.id, CalendarFeedReset(user_id=owner.id))]


def set_reminders(owner: CalendarOwner, enabled: bool) -> list[Fact]:
    if owner.reminders == enabled:
        return []
    owner.reminders = enabled
    return [Fact("meetup.reminders_set", owner.id, RemindersSet(user_id=owner.id, enabled=enabled))]


# Reactions ------------------------------------------------------------------------------------


def follow_room(state: MeetupState, room: RoomInfo, version: int) -> list[Fact] | None:
    """Attendees follow the room's participants (a snapshot, applied only when newer: None when
    older, nothing to store).

    Newcomers join as ``not_responded``; leavers stop being attendees (the organizer too) and leave
    the open polls of the replica, which may close them: the meetup then moves here, in the same
    update, so a leave sends each remaining attendee one ``meetup.updated`` (the polls worker's later
    events change nothing more).
    """
    if version <= state.room_version:
        return None
    state.room_version = version
    rsvps = {a.user_id: a.rsvp for a in state.attendees}
    attendees = [Attendee(user_id=i, rsvp=rsvps.get(i, "not_responded")) for i in room.participant_ids]
    if attendees == state.attendees:
        return []
    left = [i for i in rsvps if i not in room.participant_ids]
    state.attendees = attendees
    moves: list[Fact] = []
    for poll in list(state.polls):
        if poll.status == "open" and any(i in poll.participant_ids for i in left):
            moves += _replace_poll(state, _without(poll, left))[0]
    # Last, so its snapshot is the meetup as the whole change left it.
    updated = Fact("meetup.updated", state.id, state.updated())
    return _deliver(state, [*moves, updated], state.attendee_ids)


def apply_poll(state: MeetupState, event_type: str, poll: Poll, version: int) -> list[Fact] | None:
    """A snapshot of one of the meetup's polls, applied when newer than the replica's (None: nothing
    to store).

    Users whose alerts change get ``meetup.updated``; a reschedule or relocate poll closing with a
    winner moves the meetup, and then every attendee gets it (still once).
    """
    if event_type == "poll.vote_cast" and poll.status == "closed":
        return None  # this vote closed it: the poll.closed of the same command sends the one update
    if version <= state.poll_versions.get(poll.id, 0):
        return None
    state.poll_versions[poll.id] = version
    facts, recipients = _replace_poll(state, poll)
    if not facts:  # every change is an event, the meetup view follows them
        facts = [Fact("meetup.updated", state.id, state.updated())]
    return _deliver(state, facts, recipients)


def _replace_poll(state: MeetupState, poll: Poll) -> tuple[list[Fact], list[str]]:
    """Put ``poll`` in the replica: the facts that causes, and who must get the meetup again."""
    before = {i: state.alerts(i) for i in state.attendee_ids}
    old = next((p for p in state.polls if p.id == poll.id), None)
    state.polls = sorted([p for p in state.polls if p.id != poll.id] + [poll], key=lambda p: (p.created_at, p.id))
    closing = poll.status == "closed" and (old is None or old.status == "open")
    if closing and (moved := _move(state, poll)):
        return [moved], state.attendee_ids
    return [], [i for i in state.attendee_ids if state.alerts(i) != before[i]]


def _move(state: MeetupState, poll: Poll) -> Fact | None:
    """A closed reschedule or relocate poll with a winner moves the meetup (unless already there, or
    cancelled); moved in time, it keeps its length."""
    if poll.winner_index is None or poll.poll_type == "generic" or state.cancelled_at is not None:
        return None
    value = poll.choices[poll.winner_index]
    if poll.poll_type == "reschedule":
        when = parse_time(value)
        if when == state.takes_place_on:
            return None
        length = state.ends - state.takes_place_on
        state.takes_place_on, state.ends_on, moved_field = when, when + length, "takes_place_on"
    else:
        if value == state.location:
            return None
        state.location, moved_field = value, "location"
    state.sequence += 1
    moved = MeetupMoved(
        meetup=state.view(),
        created_at=state.created_at,
        poll_id=poll.id,
        field=moved_field,
        value=value,
        sequence=state.sequence,
    )
    return Fact("meetup.moved", state.id, moved)


def _deliver(state: MeetupState, facts: list[Fact], recipients: Iterable[str]) -> list[Fact]:
    """One request sends each recipient at most one ``meetup.updated``: all of them ride on the last
    fact, built from the final state."""
    if not facts or not (sends := _updated(state, recipients)):
        return facts
    last = facts[-1]
    return [*facts[:-1], Fact(last.type, last.aggregate_id, last.payload, sends)]


def _without(poll: Poll, leavers: list[str]) -> Poll:
    """``poll`` after ``leavers`` left it (their votes still count): the polls worker's own rule,
    applied to the replica so that the meetup moves in the same update as the leave."""
    remaining = [i for i in poll.participant_ids if i not in leavers]
    voted = {vote.user_id for vote in poll.votes}
    if all(i in voted for i in remaining):  # everyone left has voted, or nobody is left
        return poll.model_copy(update={"participant_ids": remaining, "status": "closed", "winner_index": _winner(poll)})
    return poll.model_copy(update={"participant_ids": remaining})


def _winner(poll: Poll) -> int | None:
    """Most votes, ties to the lowest index, None when nobody voted."""
    counts = [0] * len(poll.choices)
    for vote in poll.votes:
        counts[vote.choice_index] += 1
    return counts.index(max(counts)) if poll.votes else None
