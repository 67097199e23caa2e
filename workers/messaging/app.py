"""The messaging worker's composition root."""

from __future__ import annotations

from faststream import FastStream

from boochat.settings import Settings
from workers.messaging.handlers import CHORES, COMMANDS, MIRRORS, PROJECTIONS, REACTIONS
from workers.messaging.storage import DOCUMENTS
from workers.runtime.service import create
from workers.runtime.tables import Worker

WORKER = Worker("messaging", COMMANDS, REACTIONS, DOCUMENTS, PROJECTIONS, CHORES, mirrors=MIRRORS)


def create_app(settings: Settings) -> FastStream:
    return create(WORKER, settings)
