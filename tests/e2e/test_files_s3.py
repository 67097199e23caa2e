"""Photos and files with the S3 store (PROTOCOL.md, Photos and files): a stack of its own whose files
are in a bucket of a real S3 API server (moto's); clients PUT to presigned URLs, call
complete_upload, and download through links sent on to presigned GETs."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from support import images
from support.broker import wait_until_idle
from support.client import Client
from support.s3 import moto_server, s3_settings

from boochat.s3store import s3_store
from e2e.helpers import make_room, new_user


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


async def test_a_photo_goes_to_the_bucket_is_completed_sent_downloaded_and_deleted(start_stack, s3_endpoint) -> None:
    s3 = await s3_settings(s3_endpoint)
    keys = ("files_store", "s3_endpoint_url", "s3_bucket", "s3_access_key_id", "s3_secret_access_key")
    stack = await start_stack(**{key: getattr(s3, key) for key in keys})
    ann = await Client.connect(stack.ws_url, dev_user=new_user("Ann"))
    bob = await Client.connect(stack.ws_url, dev_user=new_user("Bob"))
    try:
        rid = (await make_room(ann, bob))["id"]
        photo = images.photo(2000, 1500)
        ask = {"room_id": rid, "name": "beach.jpg", "content_type": "image/jpeg", "size": len(photo)}
        slot = await ann.ok("create_upload", ask)
        assert slot["url"].startswith(s3_endpoint)
        async with aiohttp.ClientSession() as http, http.put(slot["url"], data=photo) as response:
            assert response.status == 200
        attachment = (await ann.ok("complete_upload", {"upload_id": slot["upload_id"]}))["attachment"]
        assert (attachment["width"], attachment["thumbnails"]) == (2000, [320, 1280])
        assert (await ann.ok("complete_upload", {"upload_id": slot["upload_id"]}))["attachment"] == attachment
        assert (await bob.error("complete_upload", {"upload_id": slot["upload_id"]}))["code"] == "not_found"

        item = (await ann.ok("send_message", {"room_id": rid, "attachments": [slot["upload_id"]]}))["item"]
        [links] = (await bob.ok("get_attachment_links", {"room_id": rid, "seq": item["seq"]}))["links"]
        async with aiohttp.ClientSession() as http:
            async with http.get(links["url"], headers={"Range": "bytes=0-99"}) as response:
                assert response.status == 206 and response.headers["Content-Type"] == "image/jpeg"
                assert response.headers["Content-Disposition"].startswith("inline")
                assert response.url.host == "127.0.0.1" and str(response.url).startswith(s3_endpoint)
                assert len(await response.read()) == 100
            async with http.get(links["thumbnails"]["320"]) as response:
                assert response.status == 200 and images.location_of(await response.read()) == {}

        await ann.ok("delete_message", {"room_id": rid, "seq": item["seq"]})
        await wait_until_idle(stack.settings.namespace)  # media's reaction to the delete has run
        async with s3_store(s3) as store:
            assert await store.meta(slot["upload_id"]) is None
            assert await store.size(slot["upload_id"], "original") is None
        async with aiohttp.ClientSession() as http, http.get(links["url"], allow_redirects=False) as response:
            assert response.status == 404
    finally:
        await ann.close()
        await bob.close()
