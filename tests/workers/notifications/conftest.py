"""Fixtures of the notifications tests: the in-memory push port, storage bound to a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from beanie import init_beanie
from pymongo import AsyncMongoClient
from support.fcm import FakeSender

from workers.notifications.storage import DOCUMENTS
from workers.runtime.store import RUNTIME_DOCUMENTS


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
async def storage(mongo_url: str, namespace: str) -> AsyncIterator[None]:
    """The worker's documents bound to a database of this test's own."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, tz_aware=True)
    await init_beanie(database=client[f"{namespace}_notifications"], document_models=[*RUNTIME_DOCUMENTS, *DOCUMENTS])
    yield
    await client.close()
