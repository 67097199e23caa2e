"""The committed JSON schema of the client protocol is what the contracts generate."""

from contracts import schema
from contracts.frames import EVENTS
from contracts.requests import REQUESTS


def test_committed_schema_is_fresh():
    """Regenerate with ``python -m contracts.schema`` when this fails."""
    assert schema.PATH.read_text() == schema.render()


def test_schema_names_every_request_and_event():
    """Every request type and event of PROTOCOL.md is in the schema."""
    generated = schema.generate()
    assert set(generated["requests"]) == set(REQUESTS)
    assert set(generated["events"]) == set(EVENTS)
