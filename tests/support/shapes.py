"""Protocol shapes with plain defaults, for tests that need one and care about a few fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts.shapes import Poll


def a_poll(**fields: Any) -> Poll:
    """An open generic poll with two choices and no votes; ``fields`` override any of it."""
    defaults: dict[str, Any] = {
        "id": "p",
        "meetup_id": "m",
        "poll_type": "generic",
        "description": "Food?",
        "choices": ["Pizza", "Sushi"],
        "participant_ids": ["a"],
        "votes": [],
        "status": "open",
        "creator_id": "a",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "winner_index": None,
    }
    return Poll(**(defaults | fields))
