"""Rooms in the web client: unread counts, history paging, read marks, presence, rename, invite,
leave, a generic poll, and the server's refusals shown in words."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.helpers import new_user
from playwright.async_api import expect
from support.client import Client

pytestmark = pytest.mark.web


async def test_history_unread_and_presence(people, stack, shots: Path) -> None:
    ann = await people.sign_in("Ann")
    page = ann.page
    bob = await Client.connect(stack.ws_url, dev_user=new_user("Bob"))
    room = (await bob.ok("create_room", {"name": "History", "participant_ids": [ann.id]}))["room"]
    for number in range(1, 61):
        await bob.ok("send_message", {"room_id": room["id"], "content": f"message {number}"})
    link = page.locator("#room-list .room-link", has_text="History")
    await expect(link.locator(".badge")).to_have_text("60")

    # The newest page first, then the rest on request; the room is read once seen.
    await link.click()
    messages = page.locator("#timeline .message")
    await expect(messages).to_have_count(50)
    await expect(messages.first).to_contain_text("message 11")
    await expect(link.locator(".badge")).to_have_count(0)
    await page.get_by_role("button", name="Load earlier messages").click()
    await expect(messages).to_have_count(60)
    await expect(messages.first).to_contain_text("message 1")
    await expect(page.get_by_role("button", name="Load earlier messages")).to_be_hidden()
    token = await page.evaluate("localStorage.getItem('boochat.token')")
    async with await Client.connect(stack.ws_url, token=token) as same_ann:
        summaries = (await same_ann.ok("list_rooms"))["rooms"]
        mine = next(summary for summary in summaries if summary["room"]["id"] == room["id"])
        assert (mine["unread_count"], mine["last_read_seq"]) == (0, 61)

    bob_here = page.locator("#room-people li", has_text="Bob").locator(".presence")
    await expect(bob_here).to_have_attribute("data-online", "yes")
    await bob.close()
    await expect(bob_here).to_have_attribute("data-online", "no")


async def test_rename_invite_poll_refusal_and_leave(people, stack, shots: Path) -> None:
    ann = await people.sign_in("Ann")
    page = ann.page
    dialog = page.locator("dialog")
    async with await Client.connect(stack.ws_url, dev_user=new_user("Bob")) as bob:
        await expect(page.locator("#room-list")).to_be_visible()
        # A meetup with nobody else yet: its room, renamed, then Bob invited.
        await page.get_by_role("button", name="New meetup").click()
        await dialog.get_by_label("What").fill("Book club")
        await dialog.get_by_label("Where").fill("The library")
        await dialog.get_by_role("button", name="Plan it").click()
        await expect(page.locator("#room-title")).to_have_text("Book club")
        # By keyboard alone: a dialog takes the focus, Escape closes it, Enter submits it.
        await page.get_by_role("button", name="Invite").focus()
        await page.keyboard.press("Enter")
        await expect(dialog.get_by_label("Person")).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await page.keyboard.press("Shift+Tab")  # back from Invite to the meetup toggle...
        await page.keyboard.press("Tab")
        await page.keyboard.press("Tab")  # ...and on to Rename
        await expect(page.get_by_role("button", name="Rename")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(dialog.get_by_label("New name")).to_be_focused()
        await page.keyboard.press("Control+A")
        await page.keyboard.type("Book club: March")
        await page.keyboard.press("Enter")
        await expect(page.locator("#room-title")).to_have_text("Book club: March")
        await page.get_by_role("button", name="Invite").click()
        await dialog.get_by_label("Person").select_option(bob.user["id"])
        await dialog.get_by_role("button", name="Invite").click()
        joined = await bob.expect_event("room.member_joined", lambda d: d["user_id"] == bob.user["id"])
        assert joined["room"]["name"] == "Book club: March"
        await expect(page.locator("#meetup-body .attendees li", has_text="Bob")).to_contain_text("no answer yet")

        # A refused poll stays open with the server's reason in words; corrected, it is asked.
        await page.get_by_role("button", name="New poll").click()
        await dialog.get_by_label("Question").fill("Which book?")
        await dialog.get_by_label("Choice 1").fill("Dune")
        await dialog.get_by_label("Choice 2").fill("Dune")
        await dialog.get_by_role("button", name="Ask").click()
        await expect(dialog.locator(".form-error")).to_contain_text("That was not accepted: choices")
        await page.screenshot(path=shots / "refused-poll.png")
        await dialog.get_by_label("Choice 2").fill("Emma")
        await dialog.get_by_role("button", name="Ask").click()
        await expect(dialog).to_be_hidden()
        poll = page.locator("article.poll", has_text="Which book?")
        await expect(poll.locator(".tag")).to_have_text("Poll")
        created = await bob.expect_event("poll.created")
        await bob.ok("vote_poll", {"poll_id": created["poll"]["id"], "choice_index": 1})
        await expect(poll.locator(".poll-status")).to_have_text("1 of 2 voted")
        await poll.get_by_role("button", name="Vote").nth(1).click()
        await expect(poll.locator("li.winner .choice")).to_have_text("Emma")
        await expect(page.get_by_test_id("meetup-where")).to_have_text("The library")

        # Leaving: the room and its meetup leave Ann's lists; Bob sees her go.
        await page.get_by_role("button", name="Leave").click()
        await dialog.get_by_role("button", name="Leave").click()
        await expect(page.locator("#room-list .room-link", has_text="Book club")).to_have_count(0)
        await expect(page.locator("#meetup-list .room-link", has_text="Book club")).to_have_count(0)
        await bob.expect_event("room.member_left", lambda d: d["user_id"] == ann.id)
