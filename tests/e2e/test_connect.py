"""Connecting: a connection is served with every room of its user, or not at all."""

from __future__ import annotations

import os
import signal

from support.client import Client

from e2e.helpers import make_room, new_user

WAIT = 30.0


async def test_a_connection_never_misses_a_room(start_stack):
    """The rooms worker stopped: a new connection gets unavailable and 1013; once back, it gets its rooms."""
    stack = await start_stack(request_timeout_seconds=1)
    ann = await Client.connect(stack.ws_url, dev_user=new_user("Ann"))
    bob_profile = new_user("Bob")
    bob = await Client.connect(stack.ws_url, dev_user=bob_profile)
    room = await make_room(ann, bob)
    await bob.close()
    rooms = stack.supervisor.pid("rooms-1")
    assert rooms is not None
    os.kill(rooms, signal.SIGSTOP)
    try:
        async with await Client.connect(stack.ws_url) as refused:
            reply = await refused.request("authenticate", {"dev_user": bob_profile}, timeout=WAIT)
            assert reply["error"]["code"] == "unavailable"
            assert await refused.wait_closed(WAIT) == 1013
    finally:
        os.kill(rooms, signal.SIGCONT)
    async with await Client.connect(stack.ws_url, dev_user=bob_profile, timeout=WAIT) as bob:
        sent = await ann.ok("send_message", {"room_id": room["id"], "content": "still here?"}, timeout=WAIT)
        got = await bob.expect_event("room.item_added", lambda d: d["item"]["id"] == sent["item"]["id"], timeout=WAIT)
        assert got["item"]["content"] == "still here?"
    await ann.close()
