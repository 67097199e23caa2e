"""Error codes and close codes of PROTOCOL.md."""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

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
]

# Outcomes a command remembers for its idempotency key; the others are not outcomes.
REMEMBERED: frozenset[str] = frozenset({"bad_request", "forbidden", "not_found", "conflict"})


class CloseCode(IntEnum):
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003  # binary message
    INVALID_DATA = 1007  # invalid UTF-8
    MESSAGE_TOO_BIG = 1009
    SERVICE_RESTART = 1012
    MALFORMED = 4400  # the tenth malformed frame on one connection
    UNAUTHENTICATED = 4401
    RATE_LIMITED = 4429
