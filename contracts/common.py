"""Building blocks shared by every contract: base models and constrained field types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)


class Shape(BaseModel):
    """Something Boochat sends: frozen, exact."""

    model_config = ConfigDict(frozen=True, extra="forbid")


_ANNOTATIONS = frozenset({"default", "description", "examples", "title"})


def _null_is_allowed(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The published schema says what ``Input`` accepts: null for every optional field."""
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        if name in required or {"type": "null"} in prop.get("anyOf", ()):
            continue
        inner = {key: value for key, value in prop.items() if key not in _ANNOTATIONS}
        for key in inner:
            del prop[key]
        prop["anyOf"] = [inner, {"type": "null"}]


class Input(BaseModel):
    """Something a client sends: frozen, unknown keys refused, null for an optional field taken as absent."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_null_is_allowed)

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent(cls, data: Any) -> Any:
        """PROTOCOL.md: ``null`` for an optional field means the same as leaving it out (a required
        field stays required: its null is refused)."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {
            key: value
            for key, value in data.items()
            if not (value is None and key in fields and not fields[key].is_required())
        }


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: ``2026-12-01T18:30:00.000Z``."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> datetime:
    """A client time: a string carrying ``Z`` or an offset, normalised to UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("must carry Z or an offset")
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError("must carry Z or an offset")
    return parsed.astimezone(UTC)


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http or https URL with a host")
    return value


Time = Annotated[
    datetime,
    BeforeValidator(parse_time),
    PlainSerializer(format_time, return_type=str),
    Field(examples=["2026-12-01T18:30:00.000Z"]),
]


def Text(low: int, high: int, example: str = "") -> Any:  # noqa: N802 - a type factory
    """Free text: trimmed of surrounding white space, then checked against its limits."""
    return Annotated[
        StrictStr,
        StringConstraints(strip_whitespace=True, min_length=low, max_length=high),
        Field(examples=[example] if example else None),
    ]


Id = Annotated[StrictStr, StringConstraints(min_length=1, max_length=128), Field(examples=["4f1c2b9e"])]
Url = Annotated[
    StrictStr,
    StringConstraints(max_length=2048),
    AfterValidator(_check_url),
    Field(examples=["https://example.com/picture.png"]),
]
Seq = Annotated[StrictInt, Field(ge=0)]
PositiveSeq = Annotated[StrictInt, Field(ge=1)]

Name = Text(1, 100, "Friday climbing")
Content = Text(1, 4000, "see you at eight")
MessageText = Text(0, 4000, "see you at eight")  # send_message: empty only with attachments (v1.2)
Location = Text(1, 200, "The Crown, Main Street")
Description = Text(1, 500, "Where shall we eat?")
