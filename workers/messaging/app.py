"""The messaging worker's composition root."""

from __future__ import annotations

from faststream import FastStream

from boochat.settings import Settings
from workers.messaging.handlers import COMMANDS, PROJECTIONS, REACTIONS
from workers.messaging.storage import DOCUMENTS
from workers.runtime.service import Worker, create

WORKER = Worker("messaging", COMMANDS, REACTIONS, DOCUMENTS, PROJECTIONS)


def create_app(settings: Settings) -> FastStream:
    return create(WORKER, settings)
