"""The meetups worker's composition root."""

from __future__ import annotations

from faststream import FastStream

from boochat.settings import Settings
from workers.meetups.handlers import CHORES, COMMANDS, PROJECTIONS, REACTIONS
from workers.meetups.storage import DOCUMENTS
from workers.runtime.service import create
from workers.runtime.tables import Worker

WORKER = Worker("meetups", COMMANDS, REACTIONS, DOCUMENTS, PROJECTIONS, CHORES)


def create_app(settings: Settings) -> FastStream:
    return create(WORKER, settings)
