"""Error codes and close codes of PROTOCOL.md."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Literal

from pydantic import ValidationError

ErrorCode = Literal[
    "bad_request",
    "unauthenticated",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "timeout",
    "unavailable",
    "internal",
    "too_large",  # added in v1.2 (Photos and files): an upload over the size limit or the quota
]

# Outcomes a command remembers for its idempotency key; the others are not outcomes.
REMEMBERED: frozenset[str] = frozenset({"bad_request", "forbidden", "not_found", "conflict", "too_large"})


class CloseCode(IntEnum):
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003  # binary message
    INVALID_DATA = 1007  # invalid UTF-8
    MESSAGE_TOO_BIG = 1009
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013  # signing in unavailable, or a client too slow to keep up
    MALFORMED = 4400  # the tenth malformed frame on one connection
    UNAUTHENTICATED = 4401
    RATE_LIMITED = 4429


class Rejected(Exception):  # noqa: N818 - the base of every worker's domain errors
    """A command or query refused by a rule; carries a PROTOCOL.md error code.

    Each worker's domain errors derive from one base of its own, itself derived from this.
    """

    code: ErrorCode = "bad_request"

    def __init__(self, message: str, details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def details(error: ValidationError) -> dict[str, str]:
    """A ``bad_request``'s details: ``{"data.<path>": reason}``, the first reason for each path."""
    found: dict[str, str] = {}
    for problem in error.errors(include_url=False):
        path = ".".join(["data", *(str(part) for part in problem["loc"])])
        found.setdefault(path, _reason(problem))
    return found


def _reason(problem: Any) -> str:
    kind = problem["type"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    return without_input(problem).removeprefix("Value error, ").removeprefix("Assertion failed, ")


# Problems whose pydantic message quotes the input (``Input tag 'x' found ...``, ``found `x` at 0``).
QUOTING = {
    "union_tag_invalid": "Input tag does not match any of the expected tags",
    "uuid_parsing": "Input should be a valid UUID",
}
SHORTEST_QUOTED = 4  # an input shorter than this found in a message is taken for a coincidence


def without_input(problem: Any) -> str:
    """A pydantic problem's message without the input it was given (a log line, a dead letter's
    header or a remembered reply must not keep what the client sent): the few messages that quote
    it are replaced, and any other one that contains the input is cut to its type."""
    kind = str(problem["type"])
    if kind in QUOTING:
        return QUOTING[kind]
    message = str(problem["msg"])
    given = problem.get("input")
    if isinstance(given, str | int | float) and len(str(given)) >= SHORTEST_QUOTED and str(given) in message:
        return f"invalid value ({kind})"
    return message
