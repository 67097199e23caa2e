"""A rename says who renamed the room and what it was called, for messaging's announcement."""

from datetime import UTC, datetime

from workers.rooms import domain
from workers.rooms.domain import RoomState


def test_a_rename_names_the_renamer_and_the_old_name():
    state = RoomState(
        id="r", name="Den", image_url=None, participant_ids=["a"], created_by="a", created_at=datetime.now(UTC)
    )
    [fact] = domain.rename(state, "a", "Attic", "Alice")
    assert (fact.payload.renamed_by, fact.payload.renamed_by_name, fact.payload.old_name) == ("a", "Alice", "Den")
    assert fact.payload.room.name == "Attic"
    [imaged] = domain.change_image(state, "a", "https://x.test/i.png")
    assert imaged.payload.renamed_by is None
