"""boochat.mongo: the nx-27017 stand-in starts on its own port, answers, and stops."""

from __future__ import annotations

import pymongo

from boochat import mongo


async def test_stand_in_answers_and_stops() -> None:
    """It answers ping and stores documents; stop() ends the process and removes its folder."""
    stand_in = await mongo.start()
    try:
        assert stand_in.url == f"mongodb://127.0.0.1:{stand_in.port}"
        client: pymongo.AsyncMongoClient = pymongo.AsyncMongoClient(stand_in.url)
        assert (await client.admin.command("ping"))["ok"] == 1
        await client.t.things.insert_one({"_id": "a", "n": 1})
        assert await client.t.things.find_one({"_id": "a"}) == {"_id": "a", "n": 1}
        await client.close()
        assert stand_in.log_file.parent == stand_in.folder  # its own files, not the shared /tmp ones
    finally:
        await stand_in.stop()
    assert stand_in.process.returncode is not None
    assert not stand_in.folder.exists()


async def test_context_manager_and_isolation() -> None:
    """Two stand-ins run side by side on different ports; ``async with`` stops each one."""
    async with mongo.start() as first, mongo.start() as second:
        assert first.port != second.port
        client: pymongo.AsyncMongoClient = pymongo.AsyncMongoClient(first.url)
        await client.t.things.insert_one({"_id": "only-in-first"})
        await client.close()
        client = pymongo.AsyncMongoClient(second.url)
        assert await client.t.things.find_one({"_id": "only-in-first"}) is None
        await client.close()
    assert first.process.returncode is not None and second.process.returncode is not None
