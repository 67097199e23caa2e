"""What users wrote and credentials stay out of logs and dead letters: private keys are hidden at
any depth, and a validation error keeps each problem's location, type and message, never its input."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from boochat.dead import ERROR
from boochat.logs import describe_error, hide_private
from boochat.settings import Settings
from contracts.errors import details
from workers.runtime.retry import Retry

SECRET = "hunter2-the-secret-plan"


class Kind(BaseModel):
    kind: Literal["a"]


class Nested(BaseModel):
    count: int
    room_id: uuid.UUID
    pick: Kind = Field(discriminator="kind")  # a tagged union of one, enough to get union_tag_invalid


def invalid() -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        Nested.model_validate({"count": SECRET, "room_id": SECRET, "pick": {"kind": SECRET}})
    return raised.value


def test_private_values_are_hidden_at_any_depth() -> None:
    logged = {
        "event": "push_failed",
        "user_id": "bob",
        "data": {"room_id": "r1", "message": {"content": SECRET}, "targets": [{"token": SECRET}, {"Email": SECRET}]},
        "settings": ({"jwt_secret": SECRET},),
    }
    shown = hide_private(None, "info", dict(logged))
    assert SECRET not in repr(shown)
    assert shown["data"]["message"]["content"] == f"<{len(SECRET)} hidden>"
    assert shown["data"]["room_id"] == "r1" and shown["user_id"] == "bob"
    assert logged["data"]["message"]["content"] == SECRET, "what the caller logged is left as it was"
    assert hide_private(None, "debug", dict(logged)) == logged, "kept at debug, for local diagnosis"


def test_a_validation_error_is_described_without_its_input() -> None:
    error = invalid()
    assert SECRET in str(error), "pydantic's own text echoes the input"
    described = describe_error(error)
    assert SECRET not in described
    assert "count: Input should be a valid integer" in described and "type=int_parsing" in described
    assert "room_id" in described and "pick" in described


def test_a_traceback_in_a_log_line_loses_the_input_values() -> None:
    traceback = f"Traceback (most recent call last):\n  ...\n{invalid()}"
    shown = hide_private(None, "error", {"event": "message parked", "exception": traceback})
    assert SECRET not in shown["exception"] and "int_parsing" in shown["exception"]


def test_bad_request_details_do_not_quote_the_input() -> None:
    found = details(invalid())
    assert SECRET not in repr(found)
    assert set(found) == {"data.count", "data.room_id", "data.pick"}


async def test_a_dead_letter_header_does_not_echo_the_input() -> None:
    published: list[Any] = []

    class Broker:
        async def publish(self, message: Any, **kwargs: Any) -> None:
            published.append(message)

    retry = Retry(Broker(), Settings(retry_delays=(1.0,)), "t.messaging.copy_rooms")  # type: ignore[arg-type]
    message = SimpleNamespace(
        body=b"{}", headers={}, content_type=None, content_encoding=None,
        correlation_id=None, message_id="m1", timestamp=None, type=None,
    )  # fmt: skip
    await retry.failed(message, invalid())  # type: ignore[arg-type]
    [copy] = published
    assert SECRET not in str(copy.headers[ERROR]) and "int_parsing" in str(copy.headers[ERROR])
