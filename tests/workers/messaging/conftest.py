"""The messaging worker under test, on the real pipeline and the Mongo stand-in."""

from __future__ import annotations

import pytest
from support.handlers import harness

from workers.messaging.app import WORKER


@pytest.fixture
async def messaging(mongo_url):
    return await harness(WORKER, mongo_url)
