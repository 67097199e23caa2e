"""Request data follows PROTOCOL.md's limits: trimmed text, strict types, unknown keys refused."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.common import format_time
from contracts.requests import (
    Authenticate,
    CreateMeetup,
    CreatePoll,
    CreateRoom,
    GetRoomItems,
    MarkRoomRead,
    SendMessage,
    VotePoll,
)

FUTURE = format_time(datetime.now(UTC) + timedelta(days=3))


def errors(model, data) -> dict:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}


def test_free_text_is_trimmed_then_checked():
    """Names are stored trimmed; a name of only spaces is empty."""
    assert CreateRoom.model_validate({"name": "  Den  ", "participant_ids": []}).name == "Den"
    assert "name" in errors(CreateRoom, {"name": "   ", "participant_ids": []})


def test_limits_count_characters():
    """Content is 1-4000 characters."""
    SendMessage.model_validate({"room_id": "r", "content": "é" * 4000})
    assert "content" in errors(SendMessage, {"room_id": "r", "content": "x" * 4001})


def test_unknown_keys_are_refused():
    """Unknown keys are an error, also in nested objects."""
    assert "extra" in errors(CreateRoom, {"name": "a", "participant_ids": [], "extra": 1})
    assert "dev_user.x" in errors(Authenticate, {"dev_user": {"id": "a", "name": "b", "x": 1}})


def test_null_means_absent():
    """null for an optional field means the same as leaving it out."""
    assert MarkRoomRead.model_validate({"room_id": "r", "seq": None}).seq is None
    assert GetRoomItems.model_validate({"room_id": "r", "limit": None}).limit == 50
    dev = Authenticate.model_validate({"dev_user": {"id": "a", "name": "b", "email": None}, "token": None})
    assert dev.dev_user is not None and dev.dev_user.email == ""


def test_null_for_a_required_field_is_refused():
    """A required field stays required: its null is bad."""
    assert "room_id" in errors(GetRoomItems, {"room_id": None})
    assert "room_id" in errors(SendMessage, {"room_id": None, "content": "hi"})
    # without attachments a message needs its text, as in version 1: null, missing or empty
    for data in ({"room_id": "r", "content": None}, {"room_id": "r"}, {"room_id": "r", "content": " "}):
        assert "content" in errors(SendMessage, data)


@pytest.mark.parametrize("value", ["1", 1.0, True, -1])
def test_numbers_are_json_integers(value):
    """seq must be an integer >= 0: not a string, a float or a boolean."""
    assert "seq" in errors(MarkRoomRead, {"room_id": "r", "seq": value})


def test_page_bounds():
    """after_seq is >= 0 (0 pages from the first item), before_seq >= 1, limit 1-100 and 50 by default."""
    assert GetRoomItems.model_validate({"room_id": "r"}).limit == 50
    assert GetRoomItems.model_validate({"room_id": "r", "after_seq": 0}).after_seq == 0
    assert "after_seq" in errors(GetRoomItems, {"room_id": "r", "after_seq": -1})
    assert "before_seq" in errors(GetRoomItems, {"room_id": "r", "before_seq": 0})
    assert "limit" in errors(GetRoomItems, {"room_id": "r", "limit": 101})


def test_ids_are_strings_of_1_to_128():
    """An id that is not a string, empty or too long is bad."""
    for bad in (5, "", "x" * 129):
        assert "room_id" in errors(SendMessage, {"room_id": bad, "content": "hi"})


def test_participants_are_counted_as_sent():
    """Up to 1000 participant ids, duplicates included."""
    CreateRoom.model_validate({"name": "a", "participant_ids": ["u"] * 1000})
    assert "participant_ids" in errors(CreateRoom, {"name": "a", "participant_ids": ["u"] * 1001})


def test_urls_need_http_and_a_host():
    """image_url is http(s) with a host, up to 2048 characters."""
    CreateRoom.model_validate({"name": "a", "participant_ids": [], "image_url": "https://x.org/a.png"})
    for bad in ("ftp://x.org/a", "https://", "x.org/a.png", "https://x.org/" + "a" * 2040):
        assert "image_url" in errors(CreateRoom, {"name": "a", "participant_ids": [], "image_url": bad})


def test_authenticate_takes_exactly_one_credential():
    """token, google_id_token, dev_user: exactly one."""
    assert errors(Authenticate, {})
    assert errors(Authenticate, {"token": "a", "google_id_token": "b"})


def test_times_need_an_offset_and_the_future():
    """takes_place_on carries Z or an offset, is in the future, and is normalised to UTC."""
    base = {"name": "m", "location": "here", "attendee_ids": []}
    meetup = CreateMeetup.model_validate(base | {"takes_place_on": "2099-01-01T10:00:00+02:00"})
    assert format_time(meetup.takes_place_on) == "2099-01-01T08:00:00.000Z"
    assert "takes_place_on" in errors(CreateMeetup, base | {"takes_place_on": "2099-01-01T10:00:00"})
    assert "takes_place_on" in errors(CreateMeetup, base | {"takes_place_on": "2001-01-01T10:00:00Z"})
    assert "takes_place_on" in errors(CreateMeetup, base | {"takes_place_on": 4102444800})


def test_poll_choices():
    """2-10 distinct choices after trimming; reschedule choices are distinct future instants."""
    base = {"meetup_id": "m", "description": "where?"}
    assert CreatePoll.model_validate(base | {"poll_type": "generic", "choices": [" a ", "b"]}).choices == ["a", "b"]
    assert errors(CreatePoll, base | {"poll_type": "generic", "choices": ["a ", " a"]})
    assert errors(CreatePoll, base | {"poll_type": "relocate", "choices": ["a"]})
    assert errors(CreatePoll, base | {"poll_type": "generic", "choices": [str(i) for i in range(11)]})
    same = ["2099-01-01T10:00:00+02:00", "2099-01-01T08:00:00Z"]
    assert "choices" in errors(CreatePoll, base | {"poll_type": "reschedule", "choices": same})
    assert errors(CreatePoll, base | {"poll_type": "reschedule", "choices": ["tomorrow", FUTURE]})
    choices = ["2099-01-01T10:00:00+02:00", FUTURE]
    poll = CreatePoll.model_validate(base | {"poll_type": "reschedule", "choices": choices})
    assert poll.choices[0] == "2099-01-01T08:00:00.000Z"


def test_vote_index_is_a_non_negative_integer():
    """choice_index >= 0."""
    assert "choice_index" in errors(VotePoll, {"poll_id": "p", "choice_index": -1})
