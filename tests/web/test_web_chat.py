"""Everyday chat in the web client, two people in two browsers: replies, reactions, edits, deletes,
typing, mentions, notification levels, and the page's manners (cursor, drafts, offline sending,
the new-messages divider, a rename)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect
from support.client import Client
from support.stack import Stack

from web.helpers import People, Person

pytestmark = pytest.mark.web


def room_link(page: Page, name: str) -> Locator:
    return page.locator("#room-list .room-link", has_text=name)


def message(page: Page, text: str) -> Locator:
    """The message whose own text (not a quote of it) holds `text`."""
    return page.locator("#timeline .message:not(.pending)").filter(has=page.locator("p.content", has_text=text))


def composer(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Message")


async def create_room(page: Page, name: str, *member_ids: str) -> None:
    await page.get_by_role("button", name="New room").click()
    dialog = page.locator("dialog")
    await dialog.get_by_label("Name").fill(name)
    for member in member_ids:
        await dialog.locator(f'input[type=checkbox][value="{member}"]').check()
    await dialog.get_by_role("button", name="Create room").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#room-title")).to_have_text(name)


async def send(page: Page, text: str) -> None:
    await composer(page).fill(text)
    await page.keyboard.press("Enter")
    await expect(message(page, text)).to_have_count(1)


async def together(people: People, room: str, bob_phone: bool = False) -> tuple[Person, Person]:
    """Bob, then Ann (who so knows Bob), in a room Ann creates; both have it open."""
    bob = await people.sign_in("Bob", phone=bob_phone)
    ann = await people.sign_in("Ann")
    await create_room(ann.page, room, bob.id)
    await room_link(bob.page, room).click()
    await expect(bob.page.locator("#room-title")).to_have_text(room)
    return ann, bob


async def open_menu(page: Page, text: str) -> Locator:
    """The menu of the message holding `text`."""
    item = message(page, text)
    await item.hover()
    await item.get_by_role("button", name="Message actions").click()
    return item.get_by_role("menu", name="Message actions")


async def test_cursor_drafts_and_the_new_messages_divider(people: People, shots: Path) -> None:
    ann, bob = await together(people, "Plans")
    await create_room(ann.page, "Elsewhere", bob.id)
    page = ann.page

    # Opening a room puts the cursor in its message box.
    await expect(composer(page)).to_be_focused()
    await room_link(page, "Plans").click()
    await expect(composer(page)).to_be_focused()

    # A draft stays with its room: switching away and back, or reloading, brings it back.
    await composer(page).fill("half a thought")
    await room_link(page, "Elsewhere").click()
    await expect(page.locator("#room-title")).to_have_text("Elsewhere")
    await expect(composer(page)).to_have_value("")
    await room_link(page, "Plans").click()
    await expect(composer(page)).to_have_value("half a thought")
    await page.reload()
    await expect(page.locator("#room-title")).to_have_text("Plans")
    await expect(composer(page)).to_have_value("half a thought")
    await expect(composer(page)).to_be_focused()

    # Bob reads, goes elsewhere; Ann writes twice: back in the room, "New messages" is above them.
    await send(page, "seen already")
    await expect(message(bob.page, "seen already")).to_be_visible()
    await room_link(bob.page, "Elsewhere").click()
    await expect(bob.page.locator("#room-title")).to_have_text("Elsewhere")
    await send(page, "news one")
    await send(page, "news two")
    await expect(room_link(bob.page, "Plans").locator(".badge.unread")).to_have_text("2")
    await room_link(bob.page, "Plans").click()
    divider = bob.page.locator("#timeline .divider")
    await expect(divider).to_have_text("New messages")
    await expect(bob.page.locator("#timeline .divider + .message")).to_contain_text("news one")
    await bob.page.screenshot(path=shots / "divider.png")
    # Read now: opened again, the room has no divider.
    await expect(room_link(bob.page, "Plans").locator(".badge")).to_have_count(0)
    await room_link(bob.page, "Elsewhere").click()
    await room_link(bob.page, "Plans").click()
    await expect(message(bob.page, "news two")).to_be_visible()
    await expect(divider).to_have_count(0)


async def test_offline_a_message_waits_and_goes_once(people: People, stack: Stack, shots: Path) -> None:
    ann, bob = await together(people, "Tunnel")
    page = ann.page
    await send(page, "before the tunnel")
    await expect(message(bob.page, "before the tunnel")).to_be_visible()

    await ann.context.set_offline(True)
    await expect(page.locator("#status")).to_contain_text("You are offline")
    await composer(page).fill("written in the tunnel")
    await page.keyboard.press("Enter")
    pending = page.locator("#timeline .message.pending", has_text="written in the tunnel")
    await expect(pending).to_contain_text("not sent yet")
    await expect(composer(page)).to_have_value("")
    await page.screenshot(path=shots / "offline.png")

    await ann.context.set_offline(False)
    await expect(page.locator("#status")).to_be_hidden()
    await expect(message(bob.page, "written in the tunnel")).to_have_count(1)
    await expect(pending).to_have_count(0)
    await expect(message(page, "written in the tunnel")).to_have_count(1)
    token = await page.evaluate("localStorage.getItem('boochat.token')")
    async with await Client.connect(stack.ws_url, token=token) as same_ann:
        room_id = (await same_ann.ok("list_rooms"))["rooms"][0]["room"]["id"]
        items = (await same_ann.ok("get_room_items", {"room_id": room_id}))["items"]
        assert [item["content"] for item in items if item["kind"] == "message"] == [
            "before the tunnel",
            "written in the tunnel",
        ]


async def test_a_rename_shows_in_the_header_and_the_timeline(people: People) -> None:
    ann, bob = await together(people, "Old name")
    await bob.page.get_by_role("button", name="Rename").click()
    dialog = bob.page.locator("dialog")
    await dialog.get_by_label("New name").fill("New name")
    await dialog.get_by_role("button", name="Rename").click()
    for page in (ann.page, bob.page):
        await expect(page.locator("#room-title")).to_have_text("New name")
        await expect(room_link(page, "New name")).to_be_visible()
        await expect(page.locator("#timeline .announcement", has_text="New name")).to_be_visible()
    assert await ann.page.title() == "New name · Boochat"


async def test_reply_shows_its_quote_and_jumps_to_the_original(people: People, stack: Stack, shots: Path) -> None:
    ann, bob = await together(people, "Answers", bob_phone=True)
    await send(ann.page, "The original question")
    await expect(message(bob.page, "The original question")).to_be_visible()

    # Bob answers: the box says what, Cancel drops it, Reply again and send.
    menu = await open_menu(bob.page, "The original question")
    await menu.get_by_role("menuitem", name="Reply").click()
    preview = bob.page.locator("#reply-preview")
    await expect(preview).to_contain_text("Replying to Ann The original question")
    await expect(composer(bob.page)).to_be_focused()
    await preview.get_by_role("button", name="Cancel the reply").click()
    await expect(preview).to_be_hidden()
    menu = await open_menu(bob.page, "The original question")
    await menu.get_by_role("menuitem", name="Reply").click()
    await send(bob.page, "My answer")
    await expect(preview).to_be_hidden()
    for page in (ann.page, bob.page):
        quote = message(page, "My answer").locator(".quote")
        await expect(quote).to_contain_text("Ann")
        await expect(quote).to_contain_text("The original question")
    await bob.page.screenshot(path=shots / "reply-phone.png")

    # Many messages later, a fresh page has only the newest ones: the quote fetches the original.
    token = await ann.page.evaluate("localStorage.getItem('boochat.token')")
    async with await Client.connect(stack.ws_url, token=token) as same_ann:
        room_id = (await same_ann.ok("list_rooms"))["rooms"][0]["room"]["id"]
        for number in range(55):
            await same_ann.ok("send_message", {"room_id": room_id, "content": f"filler {number}"})
    await expect(message(bob.page, "filler 54")).to_be_visible()
    menu = await open_menu(bob.page, "The original question")
    await menu.get_by_role("menuitem", name="Reply").click()
    await send(bob.page, "Late answer")
    await ann.page.reload()
    await expect(message(ann.page, "Late answer")).to_be_visible()
    original = message(ann.page, "The original question")
    await expect(original).to_have_count(0)
    await message(ann.page, "Late answer").locator(".quote").click()
    await expect(original).to_be_in_viewport()
    await expect(original).to_have_class(re.compile(r"\bflash\b"))


async def test_reactions_are_counted_and_toggled_for_both(people: People, shots: Path) -> None:
    ann, bob = await together(people, "Reactions", bob_phone=True)
    await send(ann.page, "Cake on Friday")
    await expect(message(bob.page, "Cake on Friday")).to_be_visible()

    menu = await open_menu(bob.page, "Cake on Friday")
    await bob.page.screenshot(path=shots / "menu-phone.png")
    await menu.get_by_role("menuitem", name="React with 🎉").click()
    await expect(menu).to_have_count(0)
    on_bob = message(bob.page, "Cake on Friday").locator(".reaction", has_text="🎉")
    on_ann = message(ann.page, "Cake on Friday").locator(".reaction", has_text="🎉")
    await expect(on_bob).to_have_text("🎉1")
    await expect(on_bob).to_have_attribute("aria-pressed", "true")
    await expect(on_ann).to_have_text("🎉1")
    await expect(on_ann).to_have_attribute("aria-pressed", "false")

    # Ann joins in from the tally; Bob takes his back.
    await on_ann.click()
    await expect(on_ann).to_have_text("🎉2")
    await expect(on_ann).to_have_attribute("aria-pressed", "true")
    await expect(on_bob).to_have_text("🎉2")
    await on_bob.click()
    await expect(on_bob).to_have_text("🎉1")
    await expect(on_bob).to_have_attribute("aria-pressed", "false")
    await expect(on_ann).to_have_text("🎉1")
    await expect(on_ann).to_have_attribute("title", "you")
    await on_ann.click()
    await expect(message(bob.page, "Cake on Friday").locator(".reaction")).to_have_count(0)


async def test_edit_and_delete_show_for_both(people: People, stack: Stack, shots: Path) -> None:
    ann, bob = await together(people, "Corrections")
    await send(ann.page, "Meet at 7")
    menu = await open_menu(bob.page, "Meet at 7")
    await expect(menu.get_by_role("menuitem", name="Edit")).to_have_count(0)  # not Bob's
    await expect(menu.get_by_role("menuitem", name="Delete")).to_have_count(0)  # nor his room
    await menu.get_by_role("menuitem", name="Reply").click()
    await send(bob.page, "7 is early")

    # Ann edits in place: both see the new text, marked edited, and Bob's quote says so too.
    menu = await open_menu(ann.page, "Meet at 7")
    await menu.get_by_role("menuitem", name="Edit").click()
    box = ann.page.get_by_role("textbox", name="Edit the message")
    await expect(box).to_be_focused()
    await box.fill("Meet at 8")
    await box.press("Enter")
    for page in (ann.page, bob.page):
        edited = message(page, "Meet at 8")
        await expect(edited.locator(".edited")).to_have_text("edited")
        await expect(edited.locator(".edited")).to_have_attribute("title", re.compile(r"^Edited "))
        await expect(message(page, "7 is early").locator(".quote .edited")).to_have_text("edited")
    await ann.page.screenshot(path=shots / "edited.png")

    # Ann, the room's creator, may delete Bob's message too; she confirms, both see a tombstone.
    menu = await open_menu(ann.page, "7 is early")
    await expect(menu.get_by_role("menuitem", name="Edit")).to_have_count(0)
    await menu.get_by_role("menuitem", name="Delete").click()
    await ann.page.locator("dialog").get_by_role("button", name="Delete").click()
    for page in (ann.page, bob.page):
        await expect(page.locator("#timeline .message.deleted .tombstone")).to_have_text("Message deleted")
        await expect(message(page, "7 is early")).to_have_count(0)
    menu = await open_menu(ann.page, "Meet at 8")
    await menu.get_by_role("menuitem", name="Delete").click()
    dialog = ann.page.locator("dialog")
    await expect(dialog).to_contain_text("Delete this message?")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(message(bob.page, "Meet at 8")).to_be_visible()

    # An edit the server refuses (deleted meanwhile, from another device) says why.
    await send(ann.page, "tpyo here")
    menu = await open_menu(ann.page, "tpyo here")
    await menu.get_by_role("menuitem", name="Edit").click()
    token = await ann.page.evaluate("localStorage.getItem('boochat.token')")
    async with await Client.connect(stack.ws_url, token=token) as same_ann:
        room_id = (await same_ann.ok("list_rooms"))["rooms"][0]["room"]["id"]
        items = (await same_ann.ok("get_room_items", {"room_id": room_id}))["items"]
        seq = next(item["seq"] for item in items if item["content"] == "tpyo here")
        await same_ann.ok("delete_message", {"room_id": room_id, "seq": seq})
    await expect(message(bob.page, "tpyo here")).to_have_count(0)
    box = ann.page.get_by_role("textbox", name="Edit the message")
    await box.fill("typo here")
    await box.press("Enter")
    await expect(ann.page.locator(".edit-form .form-error")).to_contain_text("can no longer be edited")
    await ann.page.locator(".edit-form").get_by_role("button", name="Cancel").click()
    await expect(ann.page.locator("#timeline .message.deleted")).to_have_count(2)


async def test_typing_shows_for_the_other_and_goes(people: People) -> None:
    ann, bob = await together(people, "Typing")
    typing = bob.page.locator("#typing")
    await composer(ann.page).press_sequentially("hel")
    await expect(typing).to_have_text("Ann is typing…")
    await expect(typing).to_be_hidden()  # 6 s after the last signal
    await composer(ann.page).press_sequentially("lo")
    await expect(typing).to_have_text("Ann is typing…")
    await composer(ann.page).fill("")
    await composer(ann.page).dispatch_event("input")
    await expect(typing).to_be_hidden()  # emptied: stopped
    await send(ann.page, "hello")
    await expect(message(bob.page, "hello")).to_be_visible()
    await expect(typing).to_be_hidden()


async def test_mentions_complete_highlight_and_badge(people: People, shots: Path) -> None:
    ann, bob = await together(people, "Mentions")
    await create_room(ann.page, "Elsewhere", bob.id)
    await room_link(ann.page, "Mentions").click()
    await room_link(bob.page, "Elsewhere").click()
    await expect(bob.page.locator("#room-title")).to_have_text("Elsewhere")

    box = composer(ann.page)
    await box.press_sequentially("Hey @bo")
    options = ann.page.get_by_role("listbox", name="People to mention")
    await expect(options.get_by_role("option")).to_have_text(["@Bob"])
    await ann.page.screenshot(path=shots / "mention-completion.png")
    await box.press("Enter")
    await expect(box).to_have_value("Hey @Bob ")
    await box.press_sequentially("look at this")
    await box.press("Enter")
    await expect(message(ann.page, "look at this").locator(".mention")).to_have_text("@Bob")
    await expect(room_link(bob.page, "Mentions").locator(".badge.mention")).to_have_text("@1")

    await box.press_sequentially("@ro")
    await expect(options.get_by_role("option")).to_have_text(["@room everyone in this room"])
    await options.get_by_role("option").click()
    await box.press_sequentially("dinner?")
    await box.press("Enter")
    await expect(message(ann.page, "dinner?")).to_be_visible()
    await expect(room_link(bob.page, "Mentions").locator(".badge.mention")).to_have_text("@2")
    await bob.page.screenshot(path=shots / "mention-badge.png")

    # Bob reads them: his name stands out, and the badge goes.
    await room_link(bob.page, "Mentions").click()
    await expect(message(bob.page, "look at this").locator(".mention.me")).to_have_text("@Bob")
    await expect(message(bob.page, "look at this")).to_have_class(re.compile(r"\bmentions-me\b"))
    await expect(message(bob.page, "dinner?").locator(".mention.me")).to_have_text("@room")
    await expect(room_link(bob.page, "Mentions").locator(".badge")).to_have_count(0)


async def test_notification_level_round_trip(people: People, stack: Stack) -> None:
    ann, _ = await together(people, "Quiet please")
    page = ann.page
    level = page.get_by_role("combobox", name="Notifications")
    await expect(level).to_have_value("all")
    token = await page.evaluate("localStorage.getItem('boochat.token')")
    async with await Client.connect(stack.ws_url, token=token) as same_ann:
        await level.select_option("mentions")
        changed = await same_ann.expect_event("room.notifications_changed")
        assert changed["level"] == "mentions"
        summary = (await same_ann.ok("list_rooms"))["rooms"][0]
        assert summary["notifications"] == "mentions"
        await expect(room_link(page, "Quiet please").locator(".level")).to_have_text("@")

        # Set elsewhere: the page follows, and a reload shows it from list_rooms.
        await same_ann.ok("set_room_notifications", {"room_id": summary["room"]["id"], "level": "none"})
        await expect(level).to_have_value("none")
        await expect(room_link(page, "Quiet please").locator(".level")).to_have_text("🔕")
    await page.reload()
    await expect(page.locator("#room-title")).to_have_text("Quiet please")
    await expect(level).to_have_value("none")


async def test_changes_missed_offline_are_caught_up(people: People, stack: Stack) -> None:
    ann, bob = await together(people, "Catching up")
    await send(bob.page, "Bring chairs")
    await send(bob.page, "Bring a table")
    await send(ann.page, "Will do")
    await expect(message(bob.page, "Will do")).to_be_visible()

    await ann.context.set_offline(True)
    await expect(ann.page.locator("#status")).to_contain_text("You are offline")
    token = await bob.page.evaluate("localStorage.getItem('boochat.token')")
    async with await Client.connect(stack.ws_url, token=token) as same_bob:
        room_id = (await same_bob.ok("list_rooms"))["rooms"][0]["room"]["id"]
        items = (await same_bob.ok("get_room_items", {"room_id": room_id}))["items"]
        seqs = {item["content"]: item["seq"] for item in items}
        edit = {"room_id": room_id, "seq": seqs["Bring chairs"], "content": "Bring four chairs"}
        await same_bob.ok("edit_message", edit)
        await same_bob.ok("delete_message", {"room_id": room_id, "seq": seqs["Bring a table"]})
        await same_bob.ok("add_reaction", {"room_id": room_id, "seq": seqs["Will do"], "emoji": "❤️"})
        await same_bob.ok("send_message", {"room_id": room_id, "content": "Thanks!"})
    await expect(message(bob.page, "Thanks!")).to_be_visible()

    await ann.context.set_offline(False)
    page = ann.page
    await expect(page.locator("#status")).to_be_hidden()
    await expect(message(page, "Thanks!")).to_be_visible()
    await expect(message(page, "Bring four chairs").locator(".edited")).to_be_visible()
    await expect(page.locator("#timeline .message.deleted")).to_have_text(re.compile("Message deleted"))
    await expect(message(page, "Will do").locator(".reaction")).to_have_text("❤️1")
    # The change entries themselves are not shown: four messages, one of them a tombstone.
    await expect(page.locator("#timeline .message")).to_have_count(4)
