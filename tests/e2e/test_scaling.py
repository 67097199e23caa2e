"""Two gateways and two replicas of every worker: the protocol holds through both gateways."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
from support.client import Client

from boochat.supervisor import WORKERS
from contracts.common import format_time
from contracts.routing import GATEWAYS
from e2e.helpers import new_user
from gateway.broker import RateReport

WAIT = 30.0


async def test_everything_twice(start_stack):
    """Users on different gateways chat, see presence, follow a meetup; every replica takes work."""
    stack = await start_stack(scale={"gateway": 2, **{w: 2 for w in WORKERS}}, request_timeout_seconds=30)
    first, second = stack.ws_urls
    ann = await Client.connect(first, dev_user=new_user("Ann"))
    bob = await Client.connect(second, dev_user=new_user("Bob"))
    pat_profile = {"id": f"pat-{uuid.uuid4().hex[:8]}", "name": "Pat"}
    try:
        # presence counts connections across gateways, and reaches those who share a room with Pat
        pat_here = await Client.connect(first, dev_user=pat_profile)
        pats = await ann.ok("create_room", {"name": "Pat's", "participant_ids": [bob.user["id"], pat_profile["id"]]})
        for client in (ann, bob, pat_here):
            await client.expect_event("room.created", lambda d: d["room"]["id"] == pats["room"]["id"], timeout=WAIT)
        pat_there = await Client.connect(second, dev_user=pat_profile)
        await pat_here.close()
        assert pat_profile["id"] in (await bob.ok("list_online_users"))["user_ids"]
        await pat_there.close()
        await bob.expect_event(
            "presence.changed", lambda d: d["user_id"] == pat_profile["id"] and not d["online"], timeout=WAIT
        )
        await ann.expect_event(
            "presence.changed", lambda d: d["user_id"] == pat_profile["id"] and not d["online"], timeout=WAIT
        )
        assert pat_profile["id"] not in (await ann.ok("list_online_users"))["user_ids"]
        async with await Client.connect(second, dev_user=pat_profile):
            assert (await ann.expect_event("presence.changed", lambda d: d["user_id"] == pat_profile["id"]))["online"]

        # a room across gateways, with gap-free seq under concurrent sends
        room = (await ann.ok("create_room", {"name": "Den", "participant_ids": [bob.user["id"]]}, timeout=WAIT))["room"]
        await bob.expect_event("room.created", lambda d: d["room"]["id"] == room["id"], timeout=WAIT)
        sends = [
            c.ok("send_message", {"room_id": room["id"], "content": f"{c.user['name']} {n}"}, timeout=WAIT)
            for n in range(10)
            for c in (ann, bob)
        ]
        await asyncio.gather(*sends)
        last = await ann.expect_event("room.item_added", lambda d: d["item"]["seq"] == 21, timeout=WAIT)
        assert last["item"]["room_id"] == room["id"]
        seqs = [d["item"]["seq"] for d in bob.pending("room.item_added", lambda d: d["item"]["room_id"] == room["id"])]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

        # a meetup and a poll, through both gateways
        when = format_time(datetime.now(UTC) + timedelta(days=3))
        meetup = (
            await ann.ok(
                "create_meetup",
                {"name": "Picnic", "location": "Park", "takes_place_on": when, "attendee_ids": [bob.user["id"]]},
                timeout=WAIT,
            )
        )["meetup"]
        await bob.expect_event("meetup.created", lambda d: d["meetup"]["id"] == meetup["id"], timeout=WAIT)
        poll = (
            await bob.ok(
                "create_poll",
                {
                    "meetup_id": meetup["id"],
                    "poll_type": "relocate",
                    "description": "Where?",
                    "choices": ["Park", "Beach"],
                },
                timeout=WAIT,
            )
        )["poll"]
        await ann.ok("vote_poll", {"poll_id": poll["id"], "choice_index": 1}, timeout=WAIT)
        await bob.ok("vote_poll", {"poll_id": poll["id"], "choice_index": 1}, timeout=WAIT)
        moved = await ann.expect_event("meetup.updated", lambda d: d["meetup"]["location"] == "Beach", timeout=WAIT)
        assert moved["meetup"]["id"] == meetup["id"]
    finally:
        await ann.close()
        await bob.close()
    handled = await stack.handled_by("messaging")
    assert len(handled) == 2 and all(count > 0 for count in handled.values()), handled


async def test_a_dead_gateways_users_go_offline(start_stack):
    """A gateway killed with connections open: its users are offline for everyone, soon after."""
    stack = await start_stack(scale={"gateway": 2}, presence_sweep_seconds=1)
    first, second = stack.ws_urls
    watcher = await Client.connect(second, dev_user=new_user("Watcher"))
    pat = await Client.connect(first, dev_user=new_user("Pat"))
    try:
        room = (await pat.ok("create_room", {"name": "Den", "participant_ids": [watcher.user["id"]]}))["room"]
        await watcher.expect_event("room.created", lambda d: d["room"]["id"] == room["id"], timeout=WAIT)
        assert pat.user["id"] in (await watcher.ok("list_online_users"))["user_ids"]
        os.kill(stack.supervisor.pid("gateway-1"), signal.SIGKILL)  # no connection_closed will ever come
        gone = await watcher.expect_event(
            "presence.changed", lambda d: d["user_id"] == pat.user["id"] and not d["online"], timeout=WAIT
        )
        assert gone == {"user_id": pat.user["id"], "online": False}
        assert pat.user["id"] not in (await watcher.ok("list_online_users"))["user_ids"]
        assert watcher.user["id"] in (await watcher.ok("list_online_users"))["user_ids"]
    finally:
        await watcher.close()
        await pat.close()


async def test_limits_hold_across_gateways(start_stack):
    """The rate limit and the cap on a user's connections count what every gateway accepted."""
    limit = 10
    stack = await start_stack(scale={"gateway": 2}, rate_limit_per_minute=limit, max_connections_per_user=2)
    first, second = stack.ws_urls
    connection = await aio_pika.connect(stack.settings.amqp_url)
    reports = await (await connection.channel()).declare_queue(exclusive=True, auto_delete=True)
    await reports.bind(stack.settings.names.deliveries, routing_key=GATEWAYS)
    profile = new_user("Pat")
    here = await Client.connect(first, dev_user=profile)
    there = await Client.connect(second, dev_user=profile)
    try:
        for _ in range(limit - 1):
            await here.sync()
        reported = 0
        async with reports.iterator() as messages, asyncio.timeout(WAIT):
            async for message in messages:
                report = RateReport.model_validate_json(message.body)
                reported += report.requests.get(profile["id"], 0)
                if reported == limit - 1:
                    break
        # its reply comes through the second gateway's queue after the report, so that has counted it
        await there.ok("get_me")
        assert (await there.error("ping"))["code"] == "rate_limited"

        third = await Client.connect(first)
        refused = await third.request("authenticate", {"dev_user": profile})
        assert refused["error"]["code"] == "rate_limited"
        assert await third.wait_closed() == 4429
        await third.close()
        await here.close()
        again = await Client.connect(second, dev_user=profile)  # a place is free again
        await again.close()
    finally:
        await here.close()
        await there.close()
        await connection.close()
