"""gateway.frames: what is malformed, what is invalid data, and the frames sent back."""

from __future__ import annotations

import json

import pytest

from boochat.rpc import failure
from contracts.envelope import Reply
from gateway import frames
from gateway.frames import InvalidDataError, MalformedFrameError


def frame(**raw: object) -> str:
    return json.dumps(raw)


def test_parses_a_request() -> None:
    """A valid envelope gives its type, id and data."""
    parsed = frames.parse(frame(type="ping", id="a1", data={}))
    assert parsed == frames.Frame("ping", "a1", {})


@pytest.mark.parametrize(
    ("text", "re"),
    [
        ("not json", None),
        ("NaN", None),
        ("[1, 2]", None),
        ('"ping"', None),
        (frame(type="ping", data={}), None),
        (frame(type="ping", id=7, data={}), None),
        (frame(type="ping", id="", data={}), None),
        (frame(type="ping", id="x" * 65, data={}), None),
        (frame(type="ping", id="caf\u00e9", data={}), None),
        (frame(type="ping", id="a\nb", data={}), None),
        (frame(type="ping", id="a1", data={}, extra=1), "a1"),
        (frame(type="launch_rockets", id="a1", data={}), "a1"),
        (frame(type="sign_in", id="a1", data={}), "a1"),
        (frame(id="a1", data={}), "a1"),
        (frame(type="ping", id="a1"), "a1"),
        (frame(type="ping", id="a1", data=[]), "a1"),
        (frame(type="ping", id="a1", data=None), "a1"),
    ],
)
def test_malformed_frames(text: str, re: str | None) -> None:
    """Each malformed frame is refused, with its id only when the id itself is valid."""
    with pytest.raises(MalformedFrameError) as caught:
        frames.parse(text)
    assert caught.value.re == re


def test_longest_and_printable_ids_are_valid() -> None:
    """Ids are 1-64 characters from space to tilde."""
    assert frames.parse(frame(type="ping", id=" ~" * 32, data={})).id == " ~" * 32


def test_invalid_data_names_each_field() -> None:
    """Details map data.<path> to a reason."""
    with pytest.raises(InvalidDataError) as caught:
        frames.validate(frames.Frame("send_message", "a", {"room_id": 5, "content": "  ", "x": 1}))
    details = caught.value.details
    assert set(details) == {"data.room_id", "data.content", "data.x"}
    assert details["data.x"] == "unknown field"


def test_missing_fields_are_required() -> None:
    with pytest.raises(InvalidDataError) as caught:
        frames.validate(frames.Frame("send_message", "a", {"content": "hi"}))
    assert caught.value.details == {"data.room_id": "required"}


def test_a_message_needs_text_unless_it_has_attachments() -> None:
    """v1.2 (Photos and files): ``content`` may be left out only together with ``attachments``."""
    with pytest.raises(InvalidDataError) as caught:
        frames.validate(frames.Frame("send_message", "a", {"room_id": "r"}))
    assert caught.value.details == {"data.content": "must be 1-4000 characters"}
    frames.validate(frames.Frame("send_message", "a", {"room_id": "r", "attachments": ["u1"]}))


def test_nested_unknown_keys_are_refused() -> None:
    """Unknown keys are an error at every level."""
    data = {"dev_user": {"id": "u", "name": "U", "role": "admin"}}
    with pytest.raises(InvalidDataError) as caught:
        frames.validate(frames.Frame("authenticate", "a", data))
    assert caught.value.details == {"data.dev_user.role": "unknown field"}


def test_whole_data_errors_point_at_data() -> None:
    """A rule on the whole object (exactly one credential) is reported on ``data``."""
    with pytest.raises(InvalidDataError) as caught:
        frames.validate(frames.Frame("authenticate", "a", {}))
    assert caught.value.details == {"data": "exactly one of token, google_id_token, dev_user, invite is required"}


def test_validated_data_is_trimmed() -> None:
    model = frames.validate(frames.Frame("send_message", "a", {"room_id": "r", "content": "  hi "}))
    assert model.model_dump(mode="json", exclude_unset=True) == {"room_id": "r", "content": "hi"}


def test_server_frames() -> None:
    """ok, error (with details only when there are some) and event frames."""
    assert json.loads(frames.ok("a", {"x": None})) == {"type": "ok", "re": "a", "data": {"x": None}}
    assert json.loads(frames.error(None, "bad_request", "no")) == {
        "type": "error",
        "re": None,
        "error": {"code": "bad_request", "message": "no"},
    }
    assert json.loads(frames.event("room.read", {"room_id": "r"})) == {
        "type": "event",
        "event": "room.read",
        "data": {"room_id": "r"},
    }


def test_replies_become_frames() -> None:
    assert json.loads(frames.reply("a", Reply(ok={"k": 1}))) == {"type": "ok", "re": "a", "data": {"k": 1}}
    refused = json.loads(frames.reply("a", failure("forbidden", "not a member", {"data.room_id": "no"})))
    assert refused["error"] == {"code": "forbidden", "message": "not a member", "details": {"data.room_id": "no"}}


def test_json_nested_past_the_parsers_stack_is_not_json() -> None:
    """A RecursionError in the parser is a malformed frame, not a crash."""
    with pytest.raises(MalformedFrameError) as caught:
        frames.parse("[" * 20_000)
    assert caught.value.message == "a frame must be JSON"


def test_data_nested_too_deeply_is_invalid_and_not_forwarded() -> None:
    """Deeper than any contract: refused by the gateway itself (its owner could not even be sent it)."""
    deep: object = "x"
    for _ in range(frames.MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(InvalidDataError) as caught:
        frames.validate(frames.Frame("send_message", "a", {"room_id": deep, "content": "hi"}))
    assert caught.value.details == {"data": f"nested deeper than {frames.MAX_DEPTH} levels"}
    assert not caught.value.forwardable
    shallow = frames.Frame("send_message", "a", {"room_id": [[["x"]]], "content": "hi"})
    with pytest.raises(InvalidDataError) as caught:
        frames.validate(shallow)
    assert caught.value.forwardable
