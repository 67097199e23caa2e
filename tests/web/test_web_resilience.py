"""The web client over a bad network: it keeps its session, catches up by seq without duplicates,
fills a hole in a room's items and retries a command with the same id."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.helpers import new_user
from playwright.async_api import Page, expect
from support.client import Client

from web.helpers import Wire

pytestmark = pytest.mark.web


async def shows_exactly(page: Page, *texts: str) -> None:
    """The room's messages are these, in this order, each once (waiting for them to get there)."""
    await expect(page.locator("#timeline .message:not(.pending) p")).to_have_text(list(texts))


async def test_reconnects_catches_up_and_retries_with_the_same_id(people, stack, shots: Path) -> None:
    wire = Wire()
    ann = await people.sign_in("Ann", prepare=wire.attach)
    async with await Client.connect(stack.ws_url, dev_user=new_user("Bob")) as bob:
        room = (await bob.ok("create_room", {"name": "Night owls", "participant_ids": [ann.id]}))["room"]
        page = ann.page
        await page.locator("#room-list .room-link", has_text="Night owls").click()
        await bob.ok("send_message", {"room_id": room["id"], "content": "one"})
        await expect(page.locator("#timeline .message", has_text="one")).to_be_visible()

        # An event lost on the way: the next item's seq shows the hole, and the client fetches it.
        lost = wire.drop(lambda f: f.get("event") == "room.item_added" and f["data"]["item"]["content"] == "two")
        await bob.ok("send_message", {"room_id": room["id"], "content": "two"})
        await lost.wait()
        await bob.ok("send_message", {"room_id": room["id"], "content": "three"})
        await shows_exactly(page, "one", "two", "three")

        # Offline while Bob writes: the page says so, comes back, and shows what it missed once.
        wire.refusing = True
        await wire.cut()
        await expect(page.locator("#status")).to_contain_text("Connection lost")
        await page.screenshot(path=shots / "reconnecting.png")
        for text in ("four", "five"):
            await bob.ok("send_message", {"room_id": room["id"], "content": text})
        wire.refusing = False
        await page.get_by_role("button", name="Retry now").click()
        await expect(page.locator("#status")).to_be_hidden()
        await shows_exactly(page, "one", "two", "three", "four", "five")

        # A reply lost with its connection: the command goes again with the same id and acts once.
        reply_lost = wire.drop(lambda f: f.get("type") == "ok" and f["data"].get("item", {}).get("content") == "six")
        await page.get_by_role("textbox", name="Message").fill("six")
        await page.keyboard.press("Enter")
        await reply_lost.wait()
        await wire.cut()
        await shows_exactly(page, "one", "two", "three", "four", "five", "six")
        # "six" may show from its room.item_added before the retry: wait for the retry's reply,
        # which ends the pending bubble.
        await expect(page.locator("#timeline .message.pending")).to_have_count(0)
        sends = [frame["id"] for frame in wire.sent if frame["type"] == "send_message"]
        assert len(sends) == 2 and sends[0] == sends[1]
        items = (await bob.ok("get_room_items", {"room_id": room["id"], "after_seq": 0}))["items"]
        assert [item["content"] for item in items if item["kind"] == "message"] == [
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
        ]

        # A reload keeps the session (the token in localStorage) and the room, each item once.
        await page.reload()
        await expect(page.locator("#me")).to_contain_text("Ann")
        await shows_exactly(page, "one", "two", "three", "four", "five", "six")
        signed_in = [frame["data"] for frame in wire.sent if frame["type"] == "authenticate"]
        assert len(signed_in) == 4 and "dev_user" in signed_in[0]
        assert all(list(data) == ["token"] for data in signed_in[1:])  # the kept session, never a new sign-in
