"""A client whose connection drops while messages flow (two messaging replicas numbering them, two
gateways): it reconnects, to the other gateway, asks for what it missed by ``seq``
(``get_room_items`` after the last one it saw, page by page), and ends with exactly the room's
history, no gap and no duplicate."""

from __future__ import annotations

from typing import Any

import pytest
from e2e.helpers import new_user
from support.client import Client

from faults.helpers import UNLIMITED, Burst, Persistent, assert_gap_free, history

pytestmark = pytest.mark.e2e

PAGE = 7  # small, so the catch-up takes several pages


async def live_items(client: Client, room_id: str, count: int) -> list[dict[str, Any]]:
    """The next ``count`` items of the room as they arrive."""
    return [
        (await client.expect_event("room.item_added", lambda d: d["item"]["room_id"] == room_id))["item"]
        for _ in range(count)
    ]


async def test_a_client_that_drops_catches_up_by_seq_to_exactly_the_history(start_stack):
    stack = await start_stack(scale={"messaging": 2, "gateway": 2}, rate_limit_per_minute=UNLIMITED)
    reply_within = stack.settings.request_timeout_seconds + 5
    first, second = stack.ws_urls
    ann = await Persistent.connect(first, new_user("Ann"), reply_within)
    bob_user = new_user("Bob")
    bob = await Client.connect(first, dev_user=bob_user)
    room = (await ann.ok("create_room", {"name": "Den", "participant_ids": [bob_user["id"]]}))["room"]
    await bob.expect_event("room.created", lambda d: d["room"]["id"] == room["id"])
    burst = Burst(ann, room["id"], lanes=2).start()

    seen = await live_items(bob, room["id"], 15)
    assert [item["seq"] for item in seen] == list(range(1, 16))  # live, in order, nothing skipped
    bob.ws.transport.abort()  # the network goes: no closing handshake
    await bob.close()
    # Messages flow while Bob is away: 15 more than he saw (a message's delivery can reach him before
    # its reply reaches Ann, so what Ann has acknowledged may trail what he saw).
    await burst.reached(max(len(burst.acked), len(seen)) + 15)

    # Connected again first (to the other gateway, as after a load balancer's choice), so whatever is
    # sent from now on arrives live; then the pages.
    bob = await Client.connect(second, dev_user=bob_user)
    fetched: list[dict[str, Any]] = []
    more = True
    while more:
        after = (fetched or seen)[-1]["seq"]
        page = await bob.ok("get_room_items", {"room_id": room["id"], "after_seq": after, "limit": PAGE})
        assert [item["seq"] for item in page["items"]] == list(range(after + 1, after + 1 + len(page["items"])))
        fetched.extend(page["items"])
        more = page["has_more"]
    assert len(fetched) >= 15
    acked = await burst.stop()

    # Live items after the reconnection: those up to the last page's are copies, dropped by seq.
    last_sent = max(item["seq"] for item in acked.values())
    known = {item["seq"]: item for item in seen + fetched}
    while max(known) < last_sent:
        item = (await live_items(bob, room["id"], 1))[0]
        if item["seq"] in known:
            assert item == known[item["seq"]]
        else:
            assert item["seq"] == max(known) + 1, f"a gap before {item['seq']}"
            known[item["seq"]] = item
    mine = [known[seq] for seq in sorted(known)]
    assert_gap_free(mine)
    assert mine == await history(ann, room["id"])
    await bob.close()
    await ann.close()
