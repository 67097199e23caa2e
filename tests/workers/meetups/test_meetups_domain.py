"""The meetups domain: pure rules, no I/O."""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.common import format_time
from contracts.events import MeetupCancelled, MeetupCreated, MeetupMoved, MeetupUpdated
from contracts.requests import CreateMeetup
from contracts.routing import user_key
from contracts.shapes import Poll, Room, User, Vote
from workers.meetups import domain

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
WHEN = NOW + timedelta(days=7)


def user(user_id: str) -> User:
    return User(id=user_id, name=user_id.title())


def room(*participants: str) -> Room:
    return Room(
        id="r1",
        name="Picnic",
        image_url=None,
        participant_ids=list(participants),
        created_by="ann",
        created_at=NOW,
        last_seq=0,
    )


def meetup(*others: str) -> domain.MeetupState:
    data = CreateMeetup(name="Picnic", location="Park", takes_place_on=format_time(WHEN), attendee_ids=list(others))
    state, _ = domain.open_meetup("m1", room("ann", *others), user("ann"), data, NOW)
    return state


def poll(
    poll_id: str = "p1",
    poll_type: str = "generic",
    participants: tuple[str, ...] = ("ann", "bob"),
    votes: tuple[tuple[str, int], ...] = (),
    status: str = "open",
    winner: int | None = None,
    choices: tuple[str, ...] = ("a", "b"),
    created_at: datetime = NOW,
) -> Poll:
    return Poll(
        id=poll_id,
        meetup_id="m1",
        poll_type=poll_type,
        description="?",
        choices=list(choices),
        participant_ids=list(participants),
        votes=[Vote(user_id=u, choice_index=i) for u, i in votes],
        status=status,
        creator_id="ann",
        created_at=created_at,
        winner_index=winner,
    )


def recipients(facts: list) -> list[str]:
    return [send.key for fact in facts for send in fact.sends]


def sent_to(facts: list, user_id: str) -> list:
    return [send.data.meetup for fact in facts for send in fact.sends if send.key == user_key(user_id)]


# Errors -----------------------------------------------------------------------------------------


def test_errors_share_one_base_with_codes():
    """Every domain error is a MeetupsError carrying its PROTOCOL.md code."""
    assert domain.MeetupNotFoundError().code == "not_found"
    assert domain.NotAttendeeError().code == "forbidden"
    assert domain.UnknownUserError(["x"]).code == "not_found"
    assert all(
        issubclass(e, domain.MeetupsError)
        for e in (domain.MeetupNotFoundError, domain.NotAttendeeError, domain.UnknownUserError)
    )


def test_readable_refuses_missing_then_non_attendees():
    """A missing meetup is not_found; one the user does not attend is forbidden."""
    with pytest.raises(domain.MeetupNotFoundError):
        domain.readable(None, "ann")
    with pytest.raises(domain.NotAttendeeError):
        domain.readable(meetup("bob"), "eve")
    assert domain.readable(meetup("bob"), "bob").id == "m1"


def test_domain_is_sans_io():
    """The domain imports the standard library and contracts only."""
    tree = ast.parse(inspect.getsource(domain))
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert all(
        m.split(".")[0] in {"__future__", "collections", "dataclasses", "datetime", "typing", "zoneinfo", "contracts"}
        for m in modules
    ), modules


# Creation ---------------------------------------------------------------------------------------


def test_invitees_ignore_duplicates_and_the_organizer():
    """Attendee ids are deduplicated and the organizer dropped."""
    known = {i: user(i) for i in ("ann", "bob", "cy")}
    assert domain.invitees("ann", ["bob", "ann", "cy", "bob"], known) == ["bob", "cy"]


def test_invitees_must_be_known():
    """An unknown attendee is not_found."""
    with pytest.raises(domain.UnknownUserError) as error:
        domain.invitees("ann", ["bob", "ghost"], {"ann": user("ann"), "bob": user("bob")})
    assert "ghost" in error.value.message


def test_open_meetup_organizer_says_yes_and_everyone_gets_it():
    """The organizer starts at yes, others not_responded; meetup.created goes to each attendee."""
    data = CreateMeetup(
        name="Picnic",
        location="Park",
        takes_place_on=format_time(WHEN),
        attendee_ids=["bob"],
        image_url="https://x.example/p.png",
    )
    state, facts = domain.open_meetup("m1", room("ann", "bob"), user("ann"), data, NOW)
    view = state.view("ann")
    assert (view.room_id, view.name, view.location, view.takes_place_on) == ("r1", "Picnic", "Park", WHEN)
    assert [(a.user_id, a.rsvp) for a in view.attendees] == [("ann", "yes"), ("bob", "not_responded")]
    [fact] = facts
    assert fact.type == "meetup.created" and isinstance(fact.payload, MeetupCreated)
    assert fact.payload.organizer_name == "Ann" and fact.payload.meetup.alerts == []
    assert [(s.key, s.event) for s in fact.sends] == [
        (user_key("ann"), "meetup.created"),
        (user_key("bob"), "meetup.created"),
    ]


# RSVP and image ---------------------------------------------------------------------------------


def test_change_rsvp_updates_every_attendee():
    """A changed RSVP sends meetup.updated to every attendee once."""
    state = meetup("bob", "cy")
    facts = domain.change_rsvp(state, "bob", "maybe")
    assert [f.type for f in facts] == ["meetup.updated"] and isinstance(facts[0].payload, MeetupUpdated)
    assert recipients(facts) == [user_key(i) for i in ("ann", "bob", "cy")]
    assert [a.rsvp for a in state.attendees] == ["yes", "maybe", "not_responded"]


def test_unchanged_rsvp_or_image_sends_nothing():
    """No event when the value is unchanged."""
    state = meetup("bob")
    assert domain.change_rsvp(state, "ann", "yes") == []
    assert domain.change_image(state, "bob", "https://x.example/a.png")
    assert domain.change_image(state, "bob", "https://x.example/a.png") == []


def test_only_attendees_change_a_meetup():
    """RSVP and image changes are forbidden to non-attendees."""
    with pytest.raises(domain.NotAttendeeError):
        domain.change_rsvp(meetup("bob"), "eve", "yes")
    with pytest.raises(domain.NotAttendeeError):
        domain.change_image(meetup("bob"), "eve", "https://x.example/a.png")


# Following the room -----------------------------------------------------------------------------


def test_invited_member_becomes_an_attendee():
    """A room member who joins attends as not_responded; everyone, the newcomer included, is told."""
    state = meetup("bob")
    facts = domain.follow_room(state, room("ann", "bob", "cy"), 2)
    assert [(a.user_id, a.rsvp) for a in state.attendees][-1] == ("cy", "not_responded")
    assert recipients(facts) == [user_key(i) for i in ("ann", "bob", "cy")]


def test_leaver_stops_attending_even_the_organizer():
    """The organizer leaving stops attending; organizer_id stays; the remaining attendees are told."""
    state = meetup("bob")
    facts = domain.follow_room(state, room("bob"), 2)
    assert state.attendee_ids == ["bob"] and state.organizer_id == "ann"
    assert recipients(facts) == [user_key("bob")]
    with pytest.raises(domain.NotAttendeeError):
        domain.readable(state, "ann")


def test_room_snapshots_apply_only_when_newer():
    """An older membership snapshot is ignored; the same members again change nothing."""
    state = meetup("bob")
    domain.follow_room(state, room("ann", "bob", "cy"), 5)
    assert domain.follow_room(state, room("ann", "bob"), 4) is None
    assert domain.follow_room(state, room("ann", "bob", "cy"), 6) == []
    assert state.attendee_ids == ["ann", "bob", "cy"] and state.room_version == 6


def test_rejoining_keeps_one_entry_and_rsvps_survive():
    """Re-adding an attendee never duplicates them; others keep their RSVP."""
    state = meetup("bob")
    domain.change_rsvp(state, "bob", "no")
    domain.follow_room(state, room("ann", "bob"), 2)
    assert [(a.user_id, a.rsvp) for a in state.attendees] == [("ann", "yes"), ("bob", "no")]


# Polls replica, alerts, moves -------------------------------------------------------------------


def test_alerts_are_per_user_and_typed_by_poll():
    """One alert per open poll where the user participates and has not voted, typed by poll type."""
    state = meetup("bob", "cy")
    domain.apply_poll(state, "poll.created", poll("p1", "reschedule", choices=(format_time(WHEN), format_time(NOW))), 1)
    domain.apply_poll(state, "poll.created", poll("p2", "relocate", votes=(("ann", 0),)), 1)
    domain.apply_poll(state, "poll.created", poll("p3", "generic", status="closed"), 1)
    assert [(a.type, a.poll_id) for a in state.alerts("bob")] == [
        ("pending_reschedule_poll", "p1"),
        ("pending_relocation_poll", "p2"),
    ]
    assert [a.poll_id for a in state.alerts("ann")] == ["p1"]
    assert state.alerts("cy") == []  # not a participant
    assert state.view("bob").alerts == state.alerts("bob") and state.view().alerts == []


def test_new_poll_updates_only_users_whose_alerts_change():
    """poll.created sends meetup.updated, with their own alerts, to its participants only."""
    state = meetup("bob", "cy")
    facts = domain.apply_poll(state, "poll.created", poll(), 1)
    assert recipients(facts) == [user_key("ann"), user_key("bob")]
    assert [a.poll_id for a in sent_to(facts, "bob")[0].alerts] == ["p1"]


def test_vote_clears_the_voters_alert_only():
    """A vote that leaves the poll open updates just the voter."""
    state = meetup("bob")
    domain.apply_poll(state, "poll.created", poll(), 1)
    facts = domain.apply_poll(state, "poll.vote_cast", poll(votes=(("bob", 1),)), 2)
    assert recipients(facts) == [user_key("bob")]
    assert sent_to(facts, "bob")[0].alerts == []


def test_stale_or_closing_vote_snapshots_are_skipped():
    """An older snapshot is ignored, and a vote_cast whose poll is closed waits for poll.closed."""
    state = meetup("bob")
    domain.apply_poll(state, "poll.vote_cast", poll(votes=(("bob", 1),)), 2)
    assert domain.apply_poll(state, "poll.created", poll(), 1) is None
    closed = poll(votes=(("bob", 1), ("ann", 1)), status="closed", winner=1)
    assert domain.apply_poll(state, "poll.vote_cast", closed, 3) is None
    assert state.polls[0].votes == [Vote(user_id="bob", choice_index=1)]


def test_polls_are_listed_oldest_first():
    """The replica keeps polls in creation order."""
    state = meetup("bob")
    domain.apply_poll(state, "poll.created", poll("late", created_at=NOW + timedelta(1)), 1)
    domain.apply_poll(state, "poll.created", poll("early"), 1)
    assert [p.id for p in state.view().polls] == ["early", "late"]


def test_closed_reschedule_poll_moves_the_meetup_once_per_recipient():
    """A reschedule winner moves the meetup: meetup.moved, and one meetup.updated per attendee."""
    state = meetup("bob", "cy")
    later = WHEN + timedelta(days=1)
    domain.apply_poll(state, "poll.created", poll(poll_type="reschedule", choices=(format_time(later), "x")), 1)
    closed = poll(
        poll_type="reschedule", choices=(format_time(later), "x"), votes=(("ann", 0),), status="closed", winner=0
    )
    facts = domain.apply_poll(state, "poll.closed", closed, 3)
    assert [f.type for f in facts] == ["meetup.moved"]
    payload = facts[0].payload
    assert isinstance(payload, MeetupMoved)
    assert (payload.field, payload.value, payload.poll_id) == ("takes_place_on", format_time(later), "p1")
    assert state.takes_place_on == later
    assert recipients(facts) == [user_key(i) for i in ("ann", "bob", "cy")]
    assert all(m.takes_place_on == later and m.alerts == [] for i in ("ann", "bob") for m in sent_to(facts, i))


def test_closed_relocate_poll_moves_even_to_the_past_and_not_again():
    """A relocate winner moves the location; a reschedule to a past time moves too; a snapshot of an
    already closed poll moves nothing again."""
    state = meetup("bob")
    relocated = poll(poll_type="relocate", choices=("Beach", "Park"), votes=(("bob", 0),), status="closed", winner=0)
    assert [f.type for f in domain.apply_poll(state, "poll.closed", relocated, 4)] == ["meetup.moved"]
    assert state.location == "Beach"
    state.location = "Elsewhere"
    assert [f.type for f in domain.apply_poll(state, "poll.closed", relocated, 5)] == ["meetup.updated"]
    assert state.location == "Elsewhere", "a poll already closed moves nothing again"
    past = NOW - timedelta(days=400)
    rescheduled = poll(
        "p2",
        "reschedule",
        choices=(format_time(past), format_time(WHEN)),
        votes=(("bob", 0),),
        status="closed",
        winner=0,
    )
    domain.apply_poll(state, "poll.closed", rescheduled, 4)
    assert state.takes_place_on == past


def test_no_move_without_winner_for_generic_or_same_value():
    """No move when nobody voted, for a generic poll, or when the winner is the current value."""
    state = meetup("bob")
    for closed in (
        poll(poll_type="relocate", choices=("Beach", "Dock"), status="closed"),
        poll("p2", votes=(("bob", 0),), status="closed", winner=0),
        poll("p3", "relocate", choices=("Park", "Dock"), votes=(("bob", 0),), status="closed", winner=0),
        poll(
            "p4",
            "reschedule",
            choices=(format_time(WHEN.astimezone(UTC)), format_time(NOW)),
            votes=(("bob", 0),),
            status="closed",
            winner=0,
        ),
    ):
        facts = domain.apply_poll(state, "poll.closed", closed, 2)
        assert all(f.type != "meetup.moved" for f in facts)
    assert (state.location, state.takes_place_on) == ("Park", WHEN)


def test_closing_updates_non_voters_whose_alert_goes():
    """A poll closed by hand clears the alerts of those who had not voted: they get the meetup."""
    state = meetup("bob", "cy")
    domain.apply_poll(state, "poll.vote_cast", poll(participants=("ann", "bob", "cy"), votes=(("ann", 0),)), 2)
    closed = poll(participants=("ann", "bob", "cy"), votes=(("ann", 0),), status="closed", winner=0)
    facts = domain.apply_poll(state, "poll.closed", closed, 3)
    assert recipients(facts) == [user_key("bob"), user_key("cy")]


def test_leaver_closing_a_poll_moves_the_meetup_in_the_same_update():
    """When the last non-voter leaves, the replica poll closes and the meetup moves with the leave:
    each remaining attendee gets a single meetup.updated; the polls worker's later snapshot adds none."""
    state = meetup("bob", "cy")
    reloc = poll(
        poll_type="relocate",
        choices=("Beach", "Dock"),
        participants=("ann", "bob", "cy"),
        votes=(("ann", 0), ("bob", 0)),
    )
    domain.apply_poll(state, "poll.created", reloc, 3)
    facts = domain.follow_room(state, room("ann", "bob"), 7)
    assert [f.type for f in facts] == ["meetup.moved", "meetup.updated"]
    assert recipients(facts) == [user_key("ann"), user_key("bob")]
    assert state.location == "Beach" and state.polls[0].participant_ids == ["ann", "bob"]
    after = reloc.model_copy(update={"participant_ids": ["ann", "bob"], "status": "closed", "winner_index": 0})
    # the polls worker's later snapshots are recorded (events for the meetup view) but sent to nobody
    assert recipients(domain.apply_poll(state, "poll.participant_removed", after, 4)) == []
    assert recipients(domain.apply_poll(state, "poll.closed", after, 5)) == []
    assert state.location == "Beach"


# Calendars and reminders (v1.2) ---------------------------------------------------------------


def zoned(ends_on: str | None = None, time_zone: str | None = None) -> dict:
    data = {"name": "Picnic", "location": "Park", "takes_place_on": format_time(WHEN), "attendee_ids": []}
    return data | ({"ends_on": ends_on} if ends_on else {}) | ({"time_zone": time_zone} if time_zone else {})


def test_a_meetup_ends_two_hours_after_it_starts_in_utc_by_default():
    """Without ends_on or time_zone: two hours long, in UTC; given, they are kept."""
    state = meetup("bob")
    assert (state.view().ends_on, state.view().time_zone, state.view().cancelled_at) == (
        WHEN + timedelta(hours=2),
        "UTC",
        None,
    )
    data = CreateMeetup.model_validate(zoned(format_time(WHEN + timedelta(minutes=30)), "Europe/Berlin"))
    given, _ = domain.open_meetup("m2", room("ann"), user("ann"), data, NOW)
    assert (given.view().ends_on, given.view().time_zone) == (WHEN + timedelta(minutes=30), "Europe/Berlin")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (zoned(ends_on=format_time(WHEN)), "ends_on"),
        (zoned(ends_on=format_time(WHEN - timedelta(hours=1))), "ends_on"),
        (zoned(time_zone="Mars/Olympus_Mons"), "time_zone"),
        (zoned(time_zone="../../etc/passwd"), "time_zone"),
        (zoned(time_zone="europe/berlin"), "time_zone"),
    ],
)
def test_an_end_before_the_start_or_an_unknown_time_zone_is_refused(data, field):
    """bad_request naming the field: ends_on must be after takes_place_on, time_zone an IANA name."""
    with pytest.raises(ValidationError) as refused:
        CreateMeetup.model_validate(data)
    assert [e["loc"] for e in refused.value.errors()] == [(field,)]


def test_a_move_keeps_the_length_and_counts_in_the_sequence():
    """A reschedule winner moves both ends; each move (time or place) is one more SEQUENCE."""
    state = meetup("bob")
    later = WHEN + timedelta(days=1)
    rescheduled = poll("p1", "reschedule", choices=(format_time(later), format_time(WHEN + timedelta(days=2))))
    domain.apply_poll(state, "poll.created", rescheduled, 1)
    [moved] = domain.apply_poll(state, "poll.closed", rescheduled.model_copy(update=CLOSED_ON_0), 2)
    assert (moved.payload.meetup.takes_place_on, moved.payload.meetup.ends_on) == (later, later + timedelta(hours=2))
    assert moved.payload.sequence == state.sequence == 1
    relocated = poll("p2", "relocate", choices=("Beach", "Lake"))
    domain.apply_poll(state, "poll.created", relocated, 1)
    [moved] = domain.apply_poll(state, "poll.closed", relocated.model_copy(update=CLOSED_ON_0), 2)
    assert moved.payload.sequence == 2 and moved.payload.meetup.location == "Beach"


CLOSED_ON_0 = {"status": "closed", "winner_index": 0, "votes": [Vote(user_id="ann", choice_index=0)]}


def test_only_the_organizer_cancels_once_and_everyone_is_told():
    """cancel: forbidden for others, conflict the second time; every attendee gets the cancelled meetup."""
    state = meetup("bob", "cy")
    with pytest.raises(domain.NotOrganizerError):
        domain.cancel(state, user("bob"), NOW)
    with pytest.raises(domain.NotAttendeeError):
        domain.cancel(state, user("eve"), NOW)
    [fact] = domain.cancel(state, user("ann"), NOW)
    assert fact.type == "meetup.cancelled" and isinstance(fact.payload, MeetupCancelled)
    assert (fact.payload.cancelled_by_name, fact.payload.sequence, fact.payload.meetup.cancelled_at) == ("Ann", 1, NOW)
    assert [(s.key, s.event) for s in fact.sends] == [(user_key(i), "meetup.updated") for i in ("ann", "bob", "cy")]
    assert all(s.data.meetup.cancelled_at == NOW for s in fact.sends)
    with pytest.raises(domain.AlreadyCancelledError) as again:
        domain.cancel(state, user("ann"), NOW)
    assert again.value.code == "conflict"


def test_a_cancelled_meetup_is_not_moved():
    """A reschedule poll closing on a cancelled meetup changes its polls only."""
    state = meetup("bob")
    domain.cancel(state, user("ann"), NOW)
    rescheduled = poll("p1", "reschedule", choices=(format_time(WHEN + timedelta(days=1)), format_time(NOW)))
    domain.apply_poll(state, "poll.created", rescheduled, 1)
    facts = domain.apply_poll(state, "poll.closed", rescheduled.model_copy(update=CLOSED_ON_0), 2)
    assert [f.type for f in facts] == ["meetup.updated"] and state.takes_place_on == WHEN


LEADS = (86400, 7200)


def test_schedule_plans_each_lead_time_and_the_nudge():
    """One reminder per lead time (the nudge's 24 h once), those already due when planned left out."""
    view = meetup("bob").view()
    assert [(r.lead_seconds, r.due_at) for r in domain.schedule(view, LEADS, [], NOW)] == [
        (86400, WHEN - timedelta(days=1)),
        (7200, WHEN - timedelta(hours=2)),
    ]
    assert [r.lead_seconds for r in domain.schedule(view, (3600,), [], NOW)] == [86400, 3600]
    late = WHEN - timedelta(hours=3)
    assert [r.lead_seconds for r in domain.schedule(view, LEADS, [], late)] == [7200]


def test_schedule_keeps_what_was_planned_moves_with_the_start_and_drops_all_when_cancelled():
    """A reminder of the same start stays even once due; a new start gets new ones; cancelled: none."""
    state = meetup("bob")
    planned = domain.schedule(state.view(), LEADS, [], NOW)
    after_due = WHEN - timedelta(hours=1)
    assert domain.schedule(state.view(), LEADS, planned, after_due) == planned
    moved = state.view().model_copy(update={"takes_place_on": WHEN + timedelta(days=3)})
    assert [r.starts_at for r in domain.schedule(moved, LEADS, planned, NOW)] == [WHEN + timedelta(days=3)] * 2
    domain.cancel(state, user("ann"), NOW)
    assert domain.schedule(state.view(), LEADS, planned, NOW) == []


def answered(**rsvps: str) -> domain.MeetupState:
    state = meetup(*rsvps)
    for user_id, rsvp in rsvps.items():
        domain.change_rsvp(state, user_id, rsvp)
    return state


def test_remind_tells_those_going_and_nudges_those_who_have_not_answered():
    """24 h: yes and maybe get a reminder, not_responded a nudge, no nobody; each with their own meetup."""
    state = answered(bob="yes", cy="maybe", dee="no", eve="not_responded")
    reminder = domain.Reminder("m1", 86400, WHEN)
    facts = domain.remind(state, reminder, LEADS, set(), WHEN - timedelta(days=1))
    assert [(f.type, f.payload.kind, f.payload.user_ids) for f in facts] == [
        ("meetup.reminder_due", "reminder", ["ann", "bob", "cy"]),
        ("meetup.reminder_due", "nudge", ["eve"]),
    ]
    assert [(s.key, s.event, s.data.kind, s.data.lead_seconds) for s in facts[1].sends] == [
        (user_key("eve"), "meetup.reminder", "nudge", 86400)
    ]
    assert facts[0].payload.text == "Picnic starts in 24 hours: Tue 08 Jan 2030, 12:00 UTC, Park"
    assert facts[1].payload.text == "Picnic is in 24 hours (Tue 08 Jan 2030, 12:00 UTC, Park). Are you going?"


def test_remind_once_and_only_for_the_start_it_was_planned_for():
    """Sent: never again; moved, cancelled or started since: nothing; opted out: left out."""
    state = answered(bob="yes", cy="yes")
    two_hours = domain.Reminder("m1", 7200, WHEN)
    due = WHEN - timedelta(hours=2)
    assert domain.remind(state, domain.Reminder("m1", 7200, WHEN + timedelta(days=1)), LEADS, set(), due) == []
    assert domain.remind(state, two_hours, LEADS, set(), WHEN) == []  # it has started
    [fact] = domain.remind(state, two_hours, LEADS, {"cy"}, due)
    assert fact.payload.user_ids == ["ann", "bob"] and fact.payload.kind == "reminder"  # no nudge at 2 h
    assert domain.remind(state, two_hours, LEADS, set(), due) == []
    cancelled = answered(bob="yes")
    domain.cancel(cancelled, user("ann"), NOW)
    assert domain.remind(cancelled, two_hours, LEADS, set(), due) == []


def test_remind_at_the_nudge_lead_alone_nudges_only():
    """Lead times without 24 h: the 24 h reminder is a nudge only."""
    state = answered(bob="yes", cy="not_responded")
    facts = domain.remind(state, domain.Reminder("m1", 86400, WHEN), (7200,), set(), NOW)
    assert [(f.payload.kind, f.payload.user_ids) for f in facts] == [("nudge", ["cy"])]


def test_reminder_text_is_in_the_meetups_time_zone():
    """When, as people there read it."""
    data = CreateMeetup.model_validate(zoned(time_zone="America/New_York"))
    state, _ = domain.open_meetup("m2", room("ann"), user("ann"), data, NOW)
    assert (
        domain.reminder_text(state, "reminder", 5400) == "Picnic starts in 90 minutes: Tue 08 Jan 2030, 07:00 EST, Park"
    )


def test_calendar_owner_resets_and_sets_reminders():
    """A reset changes the token; reminders off then on again, nothing when unchanged."""
    owner = domain.CalendarOwner("ann", "t1")
    assert [f.type for f in domain.reset_feed(owner, "t2")] == ["meetup.calendar_feed_reset"] and owner.token == "t2"
    assert domain.set_reminders(owner, True) == []
    assert [f.payload.enabled for f in domain.set_reminders(owner, False)] == [False]
    with pytest.raises(domain.FeedNotFoundError):
        domain.feed_owner(None)
    with pytest.raises(domain.FeedNotFoundError):
        domain.in_file([], "m1")
    assert domain.in_file([], None) == []


def test_a_reminder_found_late_gives_way_to_a_shorter_one_due_too():
    """Handled only once the 2 h one is due too (the servers were down): the 24 h one is skipped."""
    state = answered(bob="yes")
    late = WHEN - timedelta(hours=1)
    assert domain.remind(state, domain.Reminder("m1", 86400, WHEN), LEADS, set(), late) == []
    assert [
        f.payload.lead_seconds for f in domain.remind(state, domain.Reminder("m1", 7200, WHEN), LEADS, set(), late)
    ] == [7200]
