"""boochat replay: every worker's read models, dropped and rebuilt from the event log, equal the live ones;
queries answer in full while a replay runs; a dry run changes nothing; failures end in one line."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from support.broker import wait_until_idle
from support.client import Client

from boochat.supervisor import WORKERS, child_env
from contracts.common import format_time
from e2e.helpers import make_room, new_user

REPLAY_TIMEOUT = 120.0


async def workload(ws_url: str) -> None:
    """A bit of everything: rooms, messages, invitations, leaving, marks, a meetup, polls, presence, devices."""
    ann, bob, cy = [await Client.connect(ws_url, dev_user=new_user(n)) for n in ("Ann", "Bob", "Cy")]
    try:
        room = (await ann.ok("create_room", {"name": "Den", "participant_ids": [bob.user["id"]]}))["room"]
        for n in range(5):
            await (ann, bob)[n % 2].ok("send_message", {"room_id": room["id"], "content": f"m{n}"})
        await ann.ok("invite_to_room", {"room_id": room["id"], "user_id": cy.user["id"]})
        await cy.ok("mark_room_read", {"room_id": room["id"]})
        await bob.ok("leave_room", {"room_id": room["id"]})
        await cy.ok("register_device", {"token": "device-" + cy.user["id"], "platform": "android"})
        when = format_time(datetime.now(UTC) + timedelta(days=7))
        meetup = (
            await ann.ok(
                "create_meetup",
                {
                    "name": "Picnic",
                    "location": "Park",
                    "takes_place_on": when,
                    "attendee_ids": [bob.user["id"], cy.user["id"]],
                },
            )
        )["meetup"]
        later = format_time(datetime.now(UTC) + timedelta(days=8))
        poll = (
            await ann.ok(
                "create_poll",
                {
                    "meetup_id": meetup["id"],
                    "poll_type": "reschedule",
                    "description": "Later?",
                    "choices": [when, later],
                },
            )
        )["poll"]
        for voter in (ann, bob, cy):
            await voter.ok("vote_poll", {"poll_id": poll["id"], "choice_index": 1})
        await ann.expect_event("meetup.updated", lambda d: d["meetup"]["takes_place_on"] == later, timeout=15)
        await bob.ok("change_rsvp", {"meetup_id": meetup["id"], "rsvp": "maybe"})
    finally:
        for client in (ann, bob, cy):
            await client.close()


# Fields that say when a document was written, not what the events said: a replay writes them anew
# (the presence replica's ``stored_at``, which its mirrors' reloads go by).
WRITE_TIMES = frozenset({"stored_at"})


async def snapshot(
    mongo_url: str, database: str, collections: list[str], without: frozenset[str] = frozenset()
) -> dict[str, list[dict[str, Any]]]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, tz_aware=True)
    try:
        return {
            name: [
                {k: v for k, v in doc.items() if k not in without}
                for doc in await client[database][name].find({}).sort("_id", 1).to_list()
            ]
            for name in collections
        }
    finally:
        await client.close()


async def drop(mongo_url: str, database: str, collections: list[str]) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    try:
        for name in collections:
            await client[database][name].delete_many({})
    finally:
        await client.close()


async def start_replay(settings, worker: str, *options: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "boochat.cli",
        "replay",
        worker,
        *options,
        env=child_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finished(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    async with asyncio.timeout(REPLAY_TIMEOUT):
        output, errors = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace"), errors.decode(errors="replace")


async def replay(settings, worker: str) -> str:
    returncode, output, errors = await finished(await start_replay(settings, worker))
    assert returncode == 0, output + errors
    return output


async def test_replay_rebuilds_what_the_live_stack_built(start_stack, mongo_url):
    """For every worker: snapshot its projections, replay, compare; replay again, compare again."""
    stack = await start_stack()
    await workload(stack.ws_url)
    await wait_until_idle(stack.settings.namespace)
    rebuilt = 0
    for worker in WORKERS:
        module = __import__(f"workers.{worker}.app", fromlist=["WORKER"])
        documents = {d for p in module.WORKER.projections.values() for d in p.documents}
        collections = sorted(d.Settings.name for d in documents)
        database = stack.settings.names.database(worker)
        live = await snapshot(mongo_url, database, collections, WRITE_TIMES)
        await drop(mongo_url, database, collections)  # so equality below can only come from the replay
        for _ in range(2):
            output = await replay(stack.settings, worker)
            assert "caught up" in output
            rebuilt_now = await snapshot(mongo_url, database, collections, WRITE_TIMES)
            assert rebuilt_now == live, f"{worker} differs after replay"
        rebuilt += sum(len(docs) for docs in live.values())
        if collections:
            assert any(live.values()), f"{worker}'s projections are empty: the workload exercised nothing"
    assert rebuilt > 0


MESSAGES = 120  # enough that rebuilding the room's items takes a while on the stand-in


async def test_queries_answer_in_full_while_replays_run(start_stack, mongo_url):
    """While messaging and then users replay from the first event, get_room_items and list_users keep
    answering exactly what they answered before; afterwards no rebuild collection is left, not even
    one an earlier, killed replay left."""
    stack = await start_stack()
    ann, bob = [await Client.connect(stack.ws_url, dev_user=new_user(n)) for n in ("Ann", "Bob")]
    try:
        room = await make_room(ann, bob)
        for n in range(MESSAGES):
            await ann.ok("send_message", {"room_id": room["id"], "content": f"m{n}"})
        await wait_until_idle(stack.settings.namespace)
        query = {"room_id": room["id"], "limit": 100}
        items, users = await ann.ok("get_room_items", query), await ann.ok("list_users")
        assert len(items["items"]) == 100 and len(users["users"]) == 2
        # What a killed replay leaves behind, next to one of messaging's projections: the next one drops it.
        messaging = __import__("workers.messaging.app", fromlist=["WORKER"]).WORKER
        projected = next(d for p in messaging.projections.values() for d in p.documents).Settings.name
        stale: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
        await stale[stack.settings.names.database("messaging")][f"{projected}__rebuild_0"].insert_one({"_id": "x"})
        await stale.close()
        for worker in ("messaging", "users"):
            replaying = asyncio.create_task(finished(await start_replay(stack.settings, worker)))
            rounds = 0
            while not replaying.done():
                assert await ann.ok("get_room_items", query) == items, f"short answer while {worker} replays"
                assert await bob.ok("list_users") == users, f"short answer while {worker} replays"
                rounds += 1
            returncode, output, errors = await replaying
            assert returncode == 0, output + errors
            assert "switched" in output and "caught up" in output, output
            assert rounds >= 5, f"only {rounds} query rounds ran while {worker} replayed"
            database = stack.settings.names.database(worker)
            client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
            try:
                left = [n for n in await client[database].list_collection_names() if "__rebuild_" in n]
            finally:
                await client.close()
            assert left == [], f"{worker} left {left}"
        assert await ann.ok("get_room_items", query) == items
    finally:
        for client_ in (ann, bob):
            await client_.close()


async def test_dry_run_counts_and_changes_nothing(start_stack, mongo_url):
    stack = await start_stack()
    await workload(stack.ws_url)
    await wait_until_idle(stack.settings.namespace)
    database = stack.settings.names.database("messaging")
    messaging = __import__("workers.messaging.app", fromlist=["WORKER"]).WORKER
    collections = sorted({d.Settings.name for p in messaging.projections.values() for d in p.documents})
    before = await snapshot(mongo_url, database, collections)
    returncode, output, errors = await finished(await start_replay(stack.settings, "messaging", "--dry-run"))
    assert returncode == 0, output + errors
    [line] = [line for line in output.splitlines() if line.startswith("dry run:")]
    counted = re.fullmatch(r"dry run: would read (\d+) events, apply (\d+) and rebuild (.+)", line)
    assert counted, line
    read, applied = int(counted[1]), int(counted[2])
    assert read > applied >= 3, line  # the workload's rooms (its own and the meetup's), its invitation...
    assert sorted(counted[3].split(", ")) == collections
    assert await snapshot(mongo_url, database, collections) == before
    assert "rebuilding" not in output


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("store", ["RabbitMQ", "MongoDB"])
async def test_an_unreachable_store_ends_the_replay_in_one_line(settings, store):
    """Nothing listens where the setting points: one JSON line on stderr names it, exit status 1."""
    setting = {
        "RabbitMQ": ("amqp_url", "amqp://guest:guest@127.0.0.1:{}/"),
        "MongoDB": ("mongo_url", "mongodb://127.0.0.1:{}/"),
    }
    name, url = setting[store]
    broken = settings.model_copy(update={name: url.format(unused_port())})
    returncode, output, errors = await finished(await start_replay(broken, "users"))
    assert returncode == 1
    assert "Traceback" not in output + errors
    lines = [json.loads(line) for line in errors.splitlines()]
    [stopped] = [line for line in lines if line.get("event") == "stopped"]
    assert stopped["reason"].startswith(f"boochat replay: {store} failed"), stopped
