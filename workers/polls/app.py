"""The polls worker's composition root."""

from __future__ import annotations

from faststream import FastStream

from boochat.settings import Settings
from workers.polls.handlers import COMMANDS, REACTIONS
from workers.polls.storage import DOCUMENTS
from workers.runtime.service import create
from workers.runtime.tables import Worker

WORKER = Worker("polls", COMMANDS, REACTIONS, DOCUMENTS)


def create_app(settings: Settings) -> FastStream:
    return create(WORKER, settings)
