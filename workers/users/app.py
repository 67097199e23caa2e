"""The users worker's composition root."""

from __future__ import annotations

from faststream import FastStream

from boochat.settings import Settings
from workers.runtime.service import create
from workers.runtime.tables import Worker
from workers.users.handlers import CHORES, COMMANDS, MIRRORS, PROJECTIONS, REACTIONS
from workers.users.storage import DOCUMENTS

WORKER = Worker("users", COMMANDS, REACTIONS, DOCUMENTS, PROJECTIONS, CHORES, mirrors=MIRRORS)


def create_app(settings: Settings) -> FastStream:
    return create(WORKER, settings)
