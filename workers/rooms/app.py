"""The rooms worker's composition root."""

from __future__ import annotations

from faststream import FastStream

from boochat.settings import Settings
from workers.rooms.handlers import COMMANDS, FOLLOWERS
from workers.rooms.storage import DOCUMENTS
from workers.runtime.service import create
from workers.runtime.tables import Worker

WORKER = Worker("rooms", COMMANDS, documents=DOCUMENTS, followers=FOLLOWERS)


def create_app(settings: Settings) -> FastStream:
    return create(WORKER, settings)
