"""Client frames in, server frames out (PROTOCOL.md, Frames and Errors); sans-I/O.

``parse`` checks the envelope (what counts towards close 4400), ``validate`` checks ``data``
against the request's contract (which never counts).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from contracts.envelope import Reply
from contracts.errors import details
from contracts.requests import REQUESTS

ID = re.compile(r"[ -~]{1,64}")
ENVELOPE_KEYS = frozenset({"type", "id", "data"})
# No contract nests half as deep; deeper data is refused before it is validated or forwarded
# (pydantic will not serialise past about 250 levels).
MAX_DEPTH = 32


@dataclass(frozen=True)
class Frame:
    type: str
    id: str
    data: dict[str, Any]


class MalformedFrameError(Exception):
    """A frame that is not a request at all; ``re`` is its id when that much was valid."""

    def __init__(self, re: str | None, message: str) -> None:
        super().__init__(message)
        self.re = re
        self.message = message


class InvalidDataError(Exception):
    """A well-formed frame whose ``data`` breaks its contract.

    ``forwardable`` is False for data that could not even travel to its owner (nested too deeply).
    """

    def __init__(self, details: dict[str, str], forwardable: bool = True) -> None:
        super().__init__("invalid data")
        self.details = details
        self.forwardable = forwardable


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(text: str) -> Frame:
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # nesting deeper than the parser's stack is refused too
        raise MalformedFrameError(None, "a frame must be JSON") from None
    if not isinstance(raw, dict):
        raise MalformedFrameError(None, "a frame must be a JSON object")
    frame_id = raw.get("id")
    if not (isinstance(frame_id, str) and ID.fullmatch(frame_id)):
        raise MalformedFrameError(None, "id must be 1 to 64 printable ASCII characters")
    unknown = sorted(set(raw) - ENVELOPE_KEYS)
    if unknown:
        raise MalformedFrameError(frame_id, f"unknown keys: {', '.join(unknown)}")
    frame_type = raw.get("type")
    if not (isinstance(frame_type, str) and frame_type in REQUESTS):
        raise MalformedFrameError(frame_id, "unknown type")
    data = raw.get("data")
    if not isinstance(data, dict):
        raise MalformedFrameError(frame_id, "data must be an object")
    return Frame(frame_type, frame_id, data)


def validate(frame: Frame) -> BaseModel:
    if _deeper_than(frame.data, MAX_DEPTH):
        raise InvalidDataError({"data": f"nested deeper than {MAX_DEPTH} levels"}, forwardable=False)
    try:
        return REQUESTS[frame.type].data.model_validate(frame.data)
    except ValidationError as exc:
        raise InvalidDataError(details(exc)) from None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects or arrays more than ``limit`` levels deep (no recursion)."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        pending.extend((child, depth + 1) for child in children)
    return False


# Server frames ------------------------------------------------------------------------------


def _dump(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def ok(re: str, data: dict[str, Any]) -> str:
    return _dump({"type": "ok", "re": re, "data": data})


def error(re: str | None, code: str, message: str, details: dict[str, str] | None = None) -> str:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return _dump({"type": "error", "re": re, "error": body})


def reply(re: str, answer: Reply) -> str:
    if answer.error is not None:
        return error(re, answer.error.code, answer.error.message, answer.error.details)
    return ok(re, answer.ok or {})


def event(name: str, data: dict[str, Any]) -> str:
    return _dump({"type": "event", "event": name, "data": data})
