"""The rooms worker's composition root."""

from __future__ import annotations

from faststream import FastStream

from boochat.settings import Settings
from workers.rooms.handlers import COMMANDS, PROJECTIONS, REACTIONS
from workers.rooms.storage import DOCUMENTS
from workers.runtime.service import Worker, create

WORKER = Worker("rooms", COMMANDS, REACTIONS, DOCUMENTS, PROJECTIONS)


def create_app(settings: Settings) -> FastStream:
    return create(WORKER, settings)
