"""boochat replay: every worker's read models, dropped and rebuilt from the event log, equal the live ones."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient
from support.broker import wait_until_idle
from support.client import Client

from boochat.supervisor import WORKERS, child_env
from contracts.common import format_time
from e2e.helpers import new_user

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


async def snapshot(mongo_url: str, database: str, collections: list[str]) -> dict[str, list[dict[str, Any]]]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, tz_aware=True)
    try:
        return {name: await client[database][name].find({}).sort("_id", 1).to_list() for name in collections}
    finally:
        await client.close()


async def drop(mongo_url: str, database: str, collections: list[str]) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    try:
        for name in collections:
            await client[database][name].delete_many({})
    finally:
        await client.close()


async def replay(settings, worker: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "boochat.cli",
        "replay",
        worker,
        env=child_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(REPLAY_TIMEOUT):
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    return text


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
        live = await snapshot(mongo_url, database, collections)
        await drop(mongo_url, database, collections)  # so equality below can only come from the replay
        for _ in range(2):
            output = await replay(stack.settings, worker)
            assert "caught up" in output
            assert await snapshot(mongo_url, database, collections) == live, f"{worker} differs after replay"
        rebuilt += sum(len(docs) for docs in live.values())
        if collections:
            assert any(live.values()), f"{worker}'s projections are empty: the workload exercised nothing"
    assert rebuilt > 0
