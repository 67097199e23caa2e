"""What each announcement says, as data beside its text (its facts), and texts in the meetup's time zone."""

from datetime import UTC, datetime, timedelta

from support.shapes import a_poll

from contracts.events import (
    MeetupCancelled,
    MeetupCreated,
    MeetupMoved,
    MemberJoined,
    MemberLeft,
    PollClosed,
    PollCreated,
    RoomCreated,
    RoomInfo,
    RoomUpdated,
)
from contracts.shapes import Meetup
from workers.messaging import domain

NOW = datetime(2026, 12, 1, tzinfo=UTC)
STARTS = datetime(2026, 12, 14, 18, 0, tzinfo=UTC)
INFO = RoomInfo(id="r", name="Den", image_url=None, participant_ids=["a", "b"], created_by="a", created_at=NOW)


def a_meetup(time_zone: str = "Europe/Berlin") -> Meetup:
    return Meetup(
        id="m",
        room_id="r",
        name="Dinner",
        organizer_id="a",
        location="Bar",
        takes_place_on=STARTS,
        image_url=None,
        attendees=[],
        polls=[],
        alerts=[],
        ends_on=STARTS + timedelta(hours=2),
        time_zone=time_zone,
    )


def copy() -> domain.RoomCopy:
    made = domain.copy_room(None, INFO, {"a": "Alice", "b": "Bob"}, 1)
    assert made is not None
    return made


def test_an_announcement_carries_its_facts_beside_its_text():
    """The item holds the facts; the room's delivery and the event both carry them."""
    facts = domain.facts_of(MemberLeft(room=INFO, user_id="b", user_name="Bob"))
    fact = domain.announce(copy(), "Bob left", "i", 3, NOW, facts=facts)
    assert fact.payload.item.content == "Bob left" and fact.payload.item.facts == facts
    assert fact.sends[0].data.item.facts == facts
    assert domain.announce(copy(), "Bob left", "i", 3, NOW).payload.item.facts is None  # as stored before


def test_room_events_give_names_and_ids():
    created = domain.facts_of(RoomCreated(room=INFO, names={"a": "Alice", "b": "Bob"}))
    assert (created.kind, created.by_id, created.by_name, created.room_name) == ("room_created", "a", "Alice", "Den")
    joined = domain.facts_of(
        MemberJoined(room=INFO, user_id="b", user_name="Bob", invited_by="a", invited_by_name="Alice")
    )
    assert (joined.kind, joined.by_name, joined.user_id, joined.user_name) == ("member_joined", "Alice", "b", "Bob")
    left = domain.facts_of(MemberLeft(room=INFO, user_id="b", user_name="Bob"))
    assert (left.kind, left.user_id, left.user_name, left.by_id) == ("member_left", "b", "Bob", None)
    renamed = domain.facts_of(RoomUpdated(room=INFO, renamed_by="a", renamed_by_name="Alice", old_name="Cave"))
    assert (renamed.kind, renamed.room_name, renamed.old_room_name) == ("room_renamed", "Den", "Cave")


def test_meetup_facts_hold_its_times_as_instants_and_its_time_zone():
    """Times are ISO instants in UTC in the JSON; the time zone says where the meetup is lived."""
    facts = domain.facts_of(MeetupCreated(meetup=a_meetup(), created_at=NOW, organizer_name="Alice"))
    assert facts.kind == "meetup_created" and (facts.by_id, facts.by_name) == ("a", "Alice")
    data = facts.model_dump(mode="json")
    assert data["takes_place_on"] == "2026-12-14T18:00:00.000Z" and data["ends_on"] == "2026-12-14T20:00:00.000Z"
    assert (data["meetup_id"], data["meetup_name"], data["location"], data["time_zone"]) == (
        "m",
        "Dinner",
        "Bar",
        "Europe/Berlin",
    )
    moved = MeetupMoved(meetup=a_meetup(), created_at=NOW, poll_id="p", field="takes_place_on", value="x")
    assert (domain.facts_of(moved).kind, domain.facts_of(moved).moved) == ("meetup_moved", "takes_place_on")
    elsewhere = moved.model_copy(update={"field": "location"})
    assert domain.facts_of(elsewhere).moved == "location"
    cancelled = domain.facts_of(
        MeetupCancelled(meetup=a_meetup(), created_at=NOW, sequence=1, cancelled_by="a", cancelled_by_name="Alice")
    )
    assert (cancelled.kind, cancelled.by_name, cancelled.time_zone) == ("meetup_cancelled", "Alice", "Europe/Berlin")


def test_poll_facts_hold_the_question_the_choices_and_the_one_chosen():
    """A reschedule poll's choices are normalised instants; a generic poll's are its words."""
    poll = a_poll(
        poll_type="reschedule",
        description="Saturday instead?",
        choices=["2026-12-19T18:00:00Z", "2026-12-20T18:00:00.000+00:00"],
        status="closed",
        winner_index=0,
    )
    created = domain.facts_of(PollCreated(poll=poll, room_id="r", creator_name="Alice"))
    assert (created.kind, created.by_name, created.question, created.poll_type) == (
        "poll_created",
        "Alice",
        "Saturday instead?",
        "reschedule",
    )
    assert created.choices == ["2026-12-19T18:00:00.000Z", "2026-12-20T18:00:00.000Z"]
    closed = domain.facts_of(PollClosed(poll=poll, room_id="r", winner="2026-12-19T18:00:00Z"))
    assert (closed.kind, closed.chosen, closed.meetup_id) == ("poll_closed", "2026-12-19T18:00:00.000Z", "m")
    generic = domain.facts_of(PollClosed(poll=a_poll(status="closed"), room_id="r", winner=None))
    assert (generic.choices, generic.chosen) == (["Pizza", "Sushi"], None)


def test_meetup_texts_say_the_time_where_the_meetup_is_lived():
    """Berlin's 19:00 CET, not 18:00 UTC; a meetup in UTC still says UTC."""
    created = domain.meetup_created(MeetupCreated(meetup=a_meetup(), created_at=NOW, organizer_name="Alice"))
    assert created == "Alice planned Dinner at Bar on Mon 14 Dec 2026, 19:00 CET"
    moved = MeetupMoved(
        meetup=a_meetup("America/New_York"), created_at=NOW, poll_id="p", field="takes_place_on", value=""
    )
    assert domain.meetup_moved(moved) == "Dinner moved to Mon 14 Dec 2026, 13:00 EST"
    cancelled = MeetupCancelled(
        meetup=a_meetup("UTC"), created_at=NOW, sequence=1, cancelled_by="a", cancelled_by_name="Alice"
    )
    assert domain.meetup_cancelled(cancelled) == "Alice cancelled Dinner (Mon 14 Dec 2026, 18:00 UTC)"


def test_a_closed_poll_reads_as_sentences():
    """A question keeps its mark, with no full stop after it; a statement gets one."""
    asked = a_poll(description="Saturday instead?", status="closed", winner_index=0)
    assert domain.poll_closed(PollClosed(poll=asked, room_id="r", winner="Pizza")) == (
        "Poll closed: Saturday instead? Chosen: Pizza"
    )
    told = a_poll(description="Pick food", status="closed", winner_index=1)
    assert (
        domain.poll_closed(PollClosed(poll=told, room_id="r", winner="Sushi"))
        == "Poll closed: Pick food. Chosen: Sushi"
    )
