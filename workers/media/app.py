"""The media worker's composition root."""

from __future__ import annotations

from faststream import FastStream

from boochat.settings import Settings
from workers.media.handlers import CHORES, COMMANDS, REACTIONS
from workers.media.storage import DOCUMENTS
from workers.runtime.service import create
from workers.runtime.tables import Worker

WORKER = Worker("media", COMMANDS, REACTIONS, DOCUMENTS, chores=CHORES)


def create_app(settings: Settings) -> FastStream:
    return create(WORKER, settings)
