"""boochat.mongo: the nx-27017 stand-in starts on its own port, answers, and stops."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

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


def test_up_says_what_to_do_when_the_stand_in_is_missing(tmp_path: Path) -> None:
    """As in the production image (no ``local`` extra): no nx-27017 beside the interpreter, no
    BOOCHAT_MONGO_URL. boochat up stops with one JSON line that says what to install or set."""
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.symlink_to(sys.executable)  # the same interpreter, in a folder without nx-27017
    packages = [str(Path(__file__).resolve().parents[2]), sysconfig.get_paths()["purelib"]]
    env = {key: value for key, value in os.environ.items() if not key.startswith("BOOCHAT_")}
    env["PYTHONPATH"] = os.pathsep.join(packages)
    result = subprocess.run(
        [str(python), "-m", "boochat.cli", "up"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    [line] = [json.loads(line) for line in result.stderr.splitlines()]
    assert line["reason"] == mongo.MISSING and "BOOCHAT_MONGO_URL" in line["reason"] and "local" in line["reason"]


async def test_databases_on_disk_outlive_the_stand_in(tmp_path: Path) -> None:
    """With ``databases``, what was stored is there after a restart; a given folder is kept."""
    databases, folder = tmp_path / "mongo", tmp_path / "run"
    async with mongo.start(databases=databases, folder=folder) as first:
        client: pymongo.AsyncMongoClient = pymongo.AsyncMongoClient(first.url)
        await client.t.things.insert_one({"_id": "kept", "n": 1})
        await client.close()
    assert (databases / "t.db").exists() and (folder / "nx.log").exists()
    async with mongo.start(databases=databases, folder=folder) as second:
        client = pymongo.AsyncMongoClient(second.url)
        assert await client.t.things.find_one({"_id": "kept"}) == {"_id": "kept", "n": 1}
        await client.close()


PARENT = """
import asyncio, sys
from boochat import mongo

async def main():
    stand_in = await mongo.start()
    print(stand_in.process.pid, flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


async def test_the_stand_in_stops_when_its_parent_is_killed() -> None:
    """No orphaned stand-in keeps a data folder's databases after ``kill -9`` of boochat up."""
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", PARENT, stdout=asyncio.subprocess.PIPE)
    assert parent.stdout is not None
    pid = int(await asyncio.wait_for(parent.stdout.readline(), 30))
    parent.kill()
    await parent.wait()
    async with asyncio.timeout(10):
        while True:
            if not alive(pid):
                return
            await asyncio.sleep(0.05)  # polling interval: an orphan's death has no event for us


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
