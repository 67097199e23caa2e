"""Photos and files in the web client, two people in two browsers, on the real stack and its files
listener (another origin): attach, paste and drop, progress, cancel, retry, errors, thumbnails with
their placeholder, the viewer, file cards and their downloads, on a phone too."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, Route, expect
from support import images

from web.helpers import People, Person, Prepare, Wire

pytestmark = pytest.mark.web

PHOTO = images.photo(1200, 800)
FILES = "**/files/**"  # the files listener's addresses (uploads and downloads)


async def together(
    people: People, room: str, bob_phone: bool = False, prepare_bob: Prepare | None = None
) -> tuple[Person, Person]:
    """Bob, then Ann (who so knows Bob), in a room Ann creates; both have it open."""
    bob = await people.sign_in("Bob", phone=bob_phone, prepare=prepare_bob)
    ann = await people.sign_in("Ann")
    page = ann.page
    await page.get_by_role("button", name="New room").click()
    dialog = page.locator("#dialog")
    await dialog.get_by_label("Name").fill(room)
    await dialog.locator(f'input[type=checkbox][value="{bob.id}"]').check()
    await dialog.get_by_role("button", name="Create room").click()
    await expect(page.locator("#room-title")).to_have_text(room)
    await bob.page.locator("#room-list .room-link", has_text=room).click()
    await expect(bob.page.locator("#room-title")).to_have_text(room)
    return ann, bob


class Held:
    """Holds the GETs of the files listener (photos, thumbnails) until released, so what shows
    before they load (the placeholder) can be seen."""

    def __init__(self) -> None:
        self.released = asyncio.Event()
        self.seen = asyncio.Event()

    async def handle(self, route: Route) -> None:
        if route.request.method != "GET":
            await route.continue_()
            return
        self.seen.set()
        await self.released.wait()
        await route.continue_()


async def drop(page: Page, name: str, data: bytes | None, content_type: str, size: int = 0) -> None:
    """Drop a file on the open room, as a drag from the desktop would (``data`` None: ``size`` zeros)."""
    await page.evaluate(
        """([name, data, type, size]) => {
            const bytes = data === null ? new Uint8Array(size) : Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type }));
            const target = document.querySelector("#timeline-scroll");
            for (const kind of ["dragenter", "dragover", "drop"]) {
                target.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }));
            }
        }""",
        [name, None if data is None else base64.b64encode(data).decode(), content_type, size],
    )


async def paste(page: Page, name: str, data: bytes, content_type: str) -> None:
    """Paste an image into the message box, as from the clipboard."""
    await page.evaluate(
        """([name, data, type]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], name, { type }));
            const box = document.querySelector("#composer-input");
            const event = new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true });
            box.dispatchEvent(event);
        }""",
        [name, base64.b64encode(data).decode(), content_type],
    )


async def test_a_photo_is_attached_with_progress_and_shows_its_placeholder_then_its_thumbnail(
    people: People, tmp_path: Path, shots: Path
) -> None:
    ann, bob = await together(people, "Beach")
    held = Held()
    await bob.context.route(FILES, held.handle)
    photo = tmp_path / "beach.jpg"
    photo.write_bytes(PHOTO)
    await ann.page.get_by_role("textbox", name="Message").fill("the beach")
    await ann.page.locator("#attach-input").set_input_files(photo)
    row = ann.page.locator("#upload-tray .upload", has_text="beach.jpg")
    await expect(row.locator("progress")).to_be_visible()
    await expect(row).to_have_attribute("data-state", "ready")
    await ann.page.keyboard.press("Enter")

    for person in (ann, bob):
        message = person.page.locator("#timeline .message:not(.pending)", has_text="the beach")
        photo_button = message.get_by_role("button", name="Open the photo beach.jpg")
        await expect(photo_button).to_be_visible()
    await expect(ann.page.locator("#upload-tray")).to_be_hidden()

    # Bob's thumbnail is held: its placeholder shows, in the photo's own shape, so nothing jumps later.
    thumb = bob.page.get_by_role("button", name="Open the photo beach.jpg")
    await held.seen.wait()
    await expect(thumb).to_have_attribute("data-state", "placeholder")
    background = await thumb.evaluate("(el) => getComputedStyle(el).backgroundImage")
    assert background.startswith('url("data:image/jpeg;base64,')
    box = await thumb.bounding_box()
    assert box is not None and (box["width"], box["height"]) == (pytest.approx(320, abs=1), pytest.approx(213, abs=1))
    held.released.set()
    await expect(thumb).to_have_attribute("data-state", "loaded")
    source = await thumb.locator("img").get_attribute("src")
    assert source is not None and "/320?" in source
    assert await thumb.locator("img").evaluate("(img) => img.naturalWidth") == 320
    assert await thumb.bounding_box() == box
    await bob.page.screenshot(path=shots / "photo.png")

    # The viewer: the photo itself (no 1280 px thumbnail: it is narrower), closed by Escape, then by a click.
    await thumb.click()
    viewer = bob.page.locator("dialog.viewer")
    await expect(viewer).to_be_visible()
    await expect(viewer.locator("img")).to_have_attribute("src", re.compile(r"/original\?"))
    await bob.page.wait_for_function("() => document.querySelector('dialog.viewer img')?.naturalWidth === 1200")
    await bob.page.keyboard.press("Escape")
    await expect(viewer).to_be_hidden()
    await thumb.click()
    await expect(viewer).to_be_visible()
    await viewer.click()
    await expect(viewer).to_be_hidden()


async def test_images_dropped_and_pasted_go_together_without_text_and_fit_a_phone(people: People, shots: Path) -> None:
    ann, bob = await together(people, "Pictures", bob_phone=True)
    await drop(ann.page, "dropped.png", images.png(100, 80), "image/png")
    await paste(ann.page, "image.png", images.png(60, 40), "image/png")
    tray = ann.page.locator("#upload-tray .upload")
    await expect(tray).to_have_count(2)
    await expect(ann.page.locator('#upload-tray .upload[data-state="ready"]')).to_have_count(2)
    await ann.page.get_by_role("button", name="Send").click()

    message = bob.page.locator("#timeline .message:not(.pending)").filter(has=bob.page.locator(".attachments"))
    await expect(message.locator(".photo")).to_have_count(2)
    for name, width in [("dropped.png", 100), ("image.png", 60)]:
        photo = message.get_by_role("button", name=f"Open the photo {name}")
        await expect(photo).to_have_attribute("data-state", "loaded")  # no thumbnail (narrower): the photo itself
        box = await photo.bounding_box()
        assert box is not None and box["width"] == pytest.approx(width, abs=1)
    assert await message.locator("p.content").count() == 0
    await bob.page.screenshot(path=shots / "phone.png")
    await bob.page.get_by_role("button", name="Back to rooms").click()
    await expect(bob.page.locator("#room-list .room-link", has_text="Pictures")).to_contain_text("📷 2 photos")


async def test_a_file_is_a_card_with_its_name_size_and_download_and_deleting_takes_it_away(
    people: People, tmp_path: Path
) -> None:
    ann, bob = await together(people, "Plans", bob_phone=True)
    pdf = tmp_path / "plan (v2).pdf"
    pdf.write_bytes(images.PDF)
    await ann.page.get_by_role("textbox", name="Message").fill("the plan")
    await ann.page.locator("#attach-input").set_input_files(pdf)
    await expect(ann.page.locator('#upload-tray .upload[data-state="ready"]')).to_have_count(1)
    await ann.page.keyboard.press("Enter")

    card = bob.page.locator("#timeline .message", has_text="the plan").locator("a.file-card")
    await expect(card).to_contain_text("plan (v2).pdf")
    await expect(card).to_contain_text(f"{len(images.PDF)} bytes")
    await expect(card).to_have_attribute("href", re.compile(r"/original\?"))
    href = await card.get_attribute("href")
    assert href is not None
    async with httpx.AsyncClient() as http:
        answer = await http.get(href)
    assert (answer.status_code, answer.content) == (200, images.PDF)
    assert answer.headers["content-disposition"].startswith("attachment;")
    viewport = bob.page.viewport_size
    box = await card.bounding_box()
    assert viewport is not None and box is not None and box["x"] + box["width"] <= viewport["width"]

    mine = ann.page.locator("#timeline .message", has_text="the plan")
    await mine.hover()
    await mine.get_by_role("button", name="Message actions").click()
    await ann.page.get_by_role("menuitem", name="Delete").click()
    await ann.page.locator("#dialog").get_by_role("button", name="Delete").click()
    gone = bob.page.locator("#timeline .message.deleted")
    await expect(gone).to_have_count(1)
    await expect(gone.locator(".attachments")).to_have_count(0)


async def test_refused_files_say_why_and_failed_ones_can_be_retried_or_removed(
    people: People, tmp_path: Path, shots: Path
) -> None:
    ann, _ = await together(people, "Oops")
    page = ann.page
    await drop(page, "huge.bin", None, "application/octet-stream", 25 * 1024 * 1024 + 1)  # over the default limit
    huge = page.locator("#upload-tray .upload", has_text="huge.bin")
    await expect(huge).to_have_attribute("data-state", "failed")
    await expect(huge.get_by_role("alert")).to_contain_text("Too large")
    await drop(page, "game.exe", images.EXECUTABLE, "application/x-msdownload")  # a type not allowed
    game = page.locator("#upload-tray .upload", has_text="game.exe")
    await expect(game.get_by_role("alert")).to_contain_text("That was not accepted")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(images.photo(400, 300)[:3000])
    await page.locator("#attach-input").set_input_files(broken)
    row = page.locator("#upload-tray .upload", has_text="broken.jpg")
    await expect(row.get_by_role("alert")).to_contain_text("corrupt or truncated")  # the PUT's 422 reason
    await expect(game.get_by_role("alert")).to_contain_text("content_type")
    await page.screenshot(path=shots / "refused.png")
    assert await page.locator("#upload-tray").get_by_role("button", name="Retry").count() == 0  # the same answer again
    await row.get_by_role("button", name="Remove").click()

    # A network failure can be retried: the file then goes.
    cut: list[str] = []

    async def cut_once(route: Route) -> None:
        if route.request.method == "PUT" and not cut:
            cut.append(route.request.url)
            await route.abort("connectionreset")
            return
        await route.continue_()

    await ann.context.route(FILES, cut_once)
    photo = tmp_path / "again.png"
    photo.write_bytes(images.png(50, 50))
    await page.locator("#attach-input").set_input_files(photo)
    again = page.locator("#upload-tray .upload", has_text="again.png")
    await expect(again.get_by_role("alert")).to_contain_text("could not be reached")
    await again.get_by_role("button", name="Retry").click()
    await expect(again).to_have_attribute("data-state", "ready")
    await again.get_by_role("button", name="Remove").click()
    await huge.get_by_role("button", name="Remove").click()
    await game.get_by_role("button", name="Remove").click()
    await expect(page.locator("#upload-tray")).to_be_hidden()
    assert await page.locator("#timeline .message").count() == 0


async def test_an_upload_in_progress_can_be_cancelled(people: People) -> None:
    ann, _ = await together(people, "Slow")
    page = ann.page
    network = await ann.context.new_cdp_session(page)
    await network.send("Network.enable")
    conditions = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 200_000}
    await network.send("Network.emulateNetworkConditions", conditions)
    await drop(page, "big.jpg", images.noisy_photo(3), "image/jpeg")
    row = page.locator("#upload-tray .upload", has_text="big.jpg")
    bar = row.locator("progress")
    moving = "() => { const b = document.querySelector('progress'); return b?.value > 0 && b.value < b.max }"
    await page.wait_for_function(moving)  # part of it sent, not all
    await expect(bar).to_be_visible()
    await row.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#upload-tray")).to_be_hidden()
    await page.get_by_role("textbox", name="Message").fill("no photo after all")
    await page.keyboard.press("Enter")
    message = page.locator("#timeline .message:not(.pending)", has_text="no photo after all")
    await expect(message).to_have_count(1)
    await expect(message.locator(".attachments")).to_have_count(0)


async def test_a_link_that_no_longer_works_is_fetched_again(people: People, tmp_path: Path) -> None:
    """Links last an hour: one refused (as an expired one is, 403) makes the page ask for fresh ones."""
    wire = Wire()
    ann, bob = await together(people, "Later", prepare_bob=wire.attach)
    refused: list[str] = []

    async def refuse_once(route: Route) -> None:
        if route.request.method == "GET" and not refused:
            refused.append(route.request.url)
            await route.fulfill(status=403, body="this address is not valid (expired, or not signed for this)\n")
            return
        await route.continue_()

    await bob.context.route(FILES, refuse_once)
    photo = tmp_path / "late.jpg"
    photo.write_bytes(PHOTO)
    await ann.page.locator("#attach-input").set_input_files(photo)
    await expect(ann.page.locator('#upload-tray .upload[data-state="ready"]')).to_have_count(1)
    await ann.page.get_by_role("button", name="Send").click()

    thumb = bob.page.get_by_role("button", name="Open the photo late.jpg")
    await expect(thumb).to_have_attribute("data-state", "loaded")
    asked = [frame for frame in wire.sent if frame["type"] == "get_attachment_links"]
    assert len(refused) == 1 and len(asked) == 2
