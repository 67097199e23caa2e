"""The media worker's tables on the Mongo stand-in (tests/support/handlers.py): slots for members
within the quota, checks of stored bytes, claims, and the lifecycle (deleted messages' files,
uploads nobody attached)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from datetime import timedelta

import aiohttp
import pytest
from support import images
from support.handlers import Harness, event, harness
from support.s3 import moto_server, s3_settings

from boochat import filelinks
from boochat.filestore import LocalStore, Meta, local_store
from boochat.s3store import s3_store
from boochat.settings import Settings
from contracts.envelope import Failure
from contracts.events import ItemChanged
from contracts.shapes import RoomItem
from workers.media.app import WORKER
from workers.media.handlers import remove_unattached

pytestmark = pytest.mark.integration


@pytest.fixture
async def media(mongo_url: str, tmp_path) -> Harness:
    loaded = await harness(WORKER, mongo_url)
    loaded.runtime.settings = Settings(jwt_secret="x" * 32, data_dir=tmp_path, storage_quota_bytes=200_000)
    members = {"ann", "bob"}
    loaded.rpc.answer(
        "messaging",
        "room_access",
        lambda command: {} if command.user_id in members else Failure(code="forbidden", message="not a member"),
    )
    return loaded


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def store(media: Harness) -> LocalStore:
    return local_store(media.runtime.settings.data_dir)


async def uploaded(media: Harness, data: bytes, user: str = "ann", name: str = "a.jpg") -> str:
    """An upload whose bytes were PUT (as the gateway stores them) and checked."""
    ask = {"room_id": "r", "name": name, "content_type": "image/jpeg", "size": len(data)}
    slot = await media.ok("create_upload", user, ask)
    files = store(media)
    files.begin(slot["upload_id"])
    with files.writer(slot["upload_id"], "original") as file:
        file.write(data)
    checked = await media.ok("upload_received", "-", {"upload_id": slot["upload_id"]})
    assert checked["attachment"] is not None, checked
    return slot["upload_id"]


async def test_a_slot_is_for_members_signed_and_made_once_per_request(media: Harness) -> None:
    ask = {"room_id": "r", "name": "a.jpg", "content_type": "image/jpeg", "size": 10}
    slot = await media.ok("create_upload", "ann", ask, id="same")
    assert await media.ok("create_upload", "ann", ask, id="same") == slot
    parts = urllib.parse.urlsplit(slot["url"])
    key = filelinks.key_of(media.runtime.settings.links_secret)
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert filelinks.verify(key, "PUT", parts.path, query, now=0) is not None
    assert await media.error("create_upload", "eve", ask) == "forbidden"
    assert [e["type"] for e in media.outbox.events] == ["upload.created"]


async def test_the_quota_counts_what_a_user_keeps(media: Harness) -> None:
    await media.ok("create_upload", "ann", {"room_id": "r", "name": "a", "content_type": "image/png", "size": 150_000})
    ask = {"room_id": "r", "name": "b", "content_type": "image/png", "size": 60_000}
    assert await media.error("create_upload", "ann", ask) == "too_large"
    assert await media.ok("create_upload", "bob", ask)  # Bob's own quota


async def test_a_claim_records_the_item_and_its_delete_removes_the_files(media: Harness) -> None:
    upload_id = await uploaded(media, images.photo(800, 600))
    assert store(media).size(upload_id, "320") is not None
    claim = {"room_id": "r", "item_id": "item1", "upload_ids": [upload_id]}
    [attachment] = (await media.ok("claim_uploads", "ann", claim))["attachments"]
    assert attachment["id"] == upload_id and attachment["thumbnails"] == [320]
    assert await media.error("claim_uploads", "bob", claim | {"item_id": "item2"}) == "bad_request"

    item = RoomItem(
        id="item1", room_id="r", seq=1, kind="message", sender_id="ann", content="", sent_at=media.runtime.now()
    )
    change = item.model_copy(update={"id": "c", "seq": 2, "kind": "delete", "target_seq": 1})
    await media.react(
        "delete_files", event("room.item_changed", ItemChanged(item=item, change=change, participant_ids=[]))
    )
    assert not store(media).folder(upload_id).exists()
    assert media.events("upload.deleted")[0]["payload"]["upload"]["id"] == upload_id


async def test_uploads_nobody_attached_are_removed_after_a_day(media: Harness, monkeypatch) -> None:
    kept = await uploaded(media, images.PDF, name="kept.pdf")
    await media.ok("claim_uploads", "ann", {"room_id": "r", "item_id": "i", "upload_ids": [kept]})
    forgotten = await uploaded(media, images.PDF, name="forgotten.pdf")
    await remove_unattached(media.runtime)
    assert store(media).folder(forgotten).exists()  # not a day yet
    later = media.runtime.now() + timedelta(days=1, minutes=1)
    monkeypatch.setattr(media.runtime, "now", lambda: later)
    await remove_unattached(media.runtime)
    await media.drain()
    assert not store(media).folder(forgotten).exists() and store(media).folder(kept).exists()
    assert [e["payload"]["upload"]["id"] for e in media.events("upload.deleted")] == [forgotten]


async def test_complete_upload_answers_what_the_puts_check_found(media: Harness) -> None:
    """With the local store the PUT's answer completed already: complete_upload answers the same."""
    ask = {"room_id": "r", "name": "a.png", "content_type": "image/png", "size": 10_000}
    slot = await media.ok("create_upload", "ann", ask)
    assert await media.error("complete_upload", "ann", {"upload_id": slot["upload_id"]}) == "bad_request"  # no PUT
    upload_id = await uploaded(media, images.png(100, 80))
    first = await media.ok("complete_upload", "ann", {"upload_id": upload_id})
    assert first["attachment"]["id"] == upload_id and first["attachment"]["content_type"] == "image/png"
    assert await media.ok("complete_upload", "ann", {"upload_id": upload_id}) == first
    assert await media.error("complete_upload", "bob", {"upload_id": upload_id}) == "not_found"  # not his
    assert len(media.events("upload.checked")) == 1  # once, for the upload that was PUT


async def test_with_s3_a_client_puts_to_the_bucket_then_completes(media: Harness, s3_endpoint: str) -> None:
    media.runtime.settings = await s3_settings(s3_endpoint, jwt_secret="x" * 32, storage_quota_bytes=10**8)
    photo, broken = images.photo(800, 600), images.photo(400, 300)[:600]
    ask = {"room_id": "r", "name": "a.jpg", "content_type": "image/jpeg", "size": len(photo)}
    slot = await media.ok("create_upload", "ann", ask)
    async with aiohttp.ClientSession() as http, http.put(slot["url"], data=photo) as response:
        assert response.status == 200
    completed = await media.ok("complete_upload", "ann", {"upload_id": slot["upload_id"]})
    assert completed["attachment"]["thumbnails"] == [320] and completed["attachment"]["width"] == 800
    async with s3_store(media.runtime.settings) as s3:
        assert await s3.incoming_size(slot["upload_id"]) is None and await s3.size(slot["upload_id"], "320")
        assert await s3.meta(slot["upload_id"]) == Meta("image/jpeg", "a.jpg")

    bad = await media.ok("create_upload", "ann", ask | {"name": "b.jpg", "size": len(broken)}, id="bad")
    async with aiohttp.ClientSession() as http, http.put(bad["url"], data=broken) as response:
        assert response.status == 200
    assert await media.error("complete_upload", "ann", {"upload_id": bad["upload_id"]}) == "bad_request"
    async with s3_store(media.runtime.settings) as s3:  # nothing of a failed upload is kept
        assert await s3.incoming_size(bad["upload_id"]) is None and await s3.meta(bad["upload_id"]) is None

    await media.ok("claim_uploads", "ann", {"room_id": "r", "item_id": "item1", "upload_ids": [slot["upload_id"]]})
    item = RoomItem(
        id="item1", room_id="r", seq=1, kind="message", sender_id="ann", content="", sent_at=media.runtime.now()
    )
    change = item.model_copy(update={"id": "c", "seq": 2, "kind": "delete", "target_seq": 1})
    await media.react(
        "delete_files", event("room.item_changed", ItemChanged(item=item, change=change, participant_ids=[]))
    )
    async with s3_store(media.runtime.settings) as s3:
        assert await s3.size(slot["upload_id"], "original") is None and await s3.meta(slot["upload_id"]) is None
