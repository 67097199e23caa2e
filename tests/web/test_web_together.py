"""Two people in two browsers: a room, a chat, a meetup, polls; each sees the other live."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from web.helpers import sign_in

pytestmark = pytest.mark.web

README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "web-client.png"


def room_link(page: Page, name: str):
    return page.locator("#room-list .room-link", has_text=name)


async def create_room(page: Page, name: str, *member_ids: str) -> None:
    await page.get_by_role("button", name="New room").click()
    dialog = page.locator("dialog")
    await dialog.get_by_label("Name").fill(name)
    for member in member_ids:
        await dialog.locator(f'input[type=checkbox][value="{member}"]').check()
    await dialog.get_by_role("button", name="Create room").click()
    await expect(dialog).to_be_hidden()


async def send(page: Page, text: str) -> None:
    await page.get_by_role("textbox", name="Message").fill(text)
    await page.keyboard.press("Enter")
    await expect(page.locator("#timeline .message:not(.pending)", has_text=text)).to_have_count(1)


async def test_two_people_chat_plan_a_meetup_and_vote(people, shots: Path) -> None:
    bob = await people.sign_in("Bob", phone=True)
    ann = await people.open("Ann")
    await ann.page.screenshot(path=shots / "sign-in.png")
    await sign_in(ann)

    # A room: Bob's list shows it as soon as Ann creates it.
    await create_room(ann.page, "Friday plans", bob.id)
    await expect(ann.page.locator("#room-title")).to_have_text("Friday plans")
    await expect(room_link(bob.page, "Friday plans")).to_be_visible()

    # Messages: Bob sees an unread count, opens the room, reads, replies; Ann sees the reply.
    await send(ann.page, "Pizza at 8?")
    await expect(room_link(bob.page, "Friday plans").locator(".badge")).to_have_text("1")
    await expect(room_link(bob.page, "Friday plans")).to_contain_text("Ann: Pizza at 8?")
    await bob.page.screenshot(path=shots / "rooms-phone.png")
    await room_link(bob.page, "Friday plans").click()
    await expect(bob.page.locator("#timeline .message", has_text="Pizza at 8?")).to_be_visible()
    await expect(room_link(bob.page, "Friday plans").locator(".badge")).to_have_count(0)
    await send(bob.page, "Yes! I'll bring drinks")
    await expect(ann.page.locator("#timeline .message", has_text="I'll bring drinks")).to_be_visible()
    await expect(ann.page.locator('#room-people li[title="Bob (online)"]')).to_be_visible()
    await bob.page.screenshot(path=shots / "room-phone.png")

    # A meetup: Ann plans it with Bob; Bob finds it in his list and says he is going.
    await ann.page.get_by_role("button", name="New meetup").click()
    dialog = ann.page.locator("dialog")
    await dialog.get_by_label("What").fill("Pizza night")
    await dialog.get_by_label("Where").fill("Luigi's")
    await dialog.locator(f'input[type=checkbox][value="{bob.id}"]').check()
    await ann.page.screenshot(path=shots / "new-meetup.png")
    await dialog.get_by_role("button", name="Plan it").click()
    await expect(ann.page.locator("#meetup-body h2")).to_have_text("Pizza night")
    await expect(ann.page.locator("#room-title")).to_have_text("Pizza night")
    await bob.page.get_by_role("button", name="Back to rooms").click()
    await bob.page.locator("#meetup-list .room-link", has_text="Pizza night").click()
    await expect(bob.page.get_by_test_id("meetup-where")).to_have_text("Luigi's")
    await bob.page.get_by_role("button", name="Going", exact=True).click()
    bob_row = ann.page.locator("#meetup-body .attendees li", has_text="Bob")
    await expect(bob_row.locator(".rsvp-word")).to_have_text("going")

    # A reschedule poll: Bob is told his vote is awaited; both vote; the meetup moves for both.
    await ann.page.get_by_role("button", name="New poll").click()
    await dialog.get_by_label("Kind").select_option("reschedule")
    await dialog.get_by_label("Question").fill("Saturday works better?")
    later = await dialog.get_by_label("Choice 2").input_value()
    await dialog.get_by_role("button", name="Ask").click()
    await expect(dialog).to_be_hidden()
    poll_on_bob = bob.page.locator("article.poll", has_text="Saturday works better?")
    await expect(poll_on_bob.locator(".badge")).to_have_text("Your vote")
    await expect(bob.page.locator("#meetup-body .notice")).to_contain_text("waiting for your vote")
    await poll_on_bob.get_by_role("button", name="Vote").nth(1).click()
    poll_on_ann = ann.page.locator("article.poll", has_text="Saturday works better?")
    await expect(poll_on_ann.locator(".poll-status")).to_have_text("1 of 2 voted")
    await bob.page.screenshot(path=shots / "meetup-phone.png")
    await poll_on_ann.get_by_role("button", name="Vote").nth(1).click()
    await expect(poll_on_ann.locator(".poll-status")).to_have_text("Closed")
    winner = await poll_on_ann.locator("li.winner .choice").inner_text()
    for page in (ann.page, bob.page):
        await expect(page.get_by_test_id("meetup-when")).to_have_text(winner)
    assert later[:10] in await ann.page.get_by_test_id("meetup-when").locator("time").get_attribute("datetime")

    # A relocate poll Bob asks and closes himself: the meetup moves to the new place for Ann too.
    await bob.page.get_by_role("button", name="New poll").click()
    dialog = bob.page.locator("dialog")
    await dialog.get_by_label("Kind").select_option("relocate")
    await dialog.get_by_label("Question").fill("Somewhere with a garden?")
    await dialog.get_by_label("Choice 1").fill("Luigi's")
    await dialog.get_by_label("Choice 2").fill("Mario's garden")
    await dialog.get_by_role("button", name="Ask").click()
    relocate_on_ann = ann.page.locator("article.poll", has_text="Somewhere with a garden?")
    await expect(relocate_on_ann.locator(".badge")).to_have_text("Your vote")
    relocate_on_bob = bob.page.locator("article.poll", has_text="Somewhere with a garden?")
    await relocate_on_bob.get_by_role("button", name="Vote").nth(1).click()
    await relocate_on_bob.get_by_role("button", name="Close poll").click()
    await expect(ann.page.get_by_test_id("meetup-where")).to_have_text("Mario's garden")
    await expect(relocate_on_ann.locator(".poll-status")).to_have_text("Closed")
    await expect(ann.page.locator("#timeline .announcement", has_text="Mario's garden").first).to_be_visible()
    await send(ann.page, "See you at Mario's then!")
    await expect(bob.page.get_by_test_id("meetup-where")).to_have_text("Mario's garden")
    await ann.page.screenshot(path=shots / "room-and-meetup.png")
    if os.environ.get("BOOCHAT_WEB_README_SHOT"):  # set it to refresh the README's picture
        await ann.page.screenshot(path=README_SHOT)
    assert re.search(r"Mario", await ann.page.locator("#meetup-list").inner_text())
