"""The media worker's file stores, local and S3 (a real S3 API server, moto's): the same upload,
check, thumbnail, download and delete behaviour from both."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from PIL import Image
from support import images
from support.s3 import moto_server, s3_settings

from boochat.filelinks import ORIGINAL
from boochat.filestore import LocalStore, Meta, local_store
from boochat.s3store import NOT_SENT_BY_S3, s3_store
from boochat.settings import Settings
from workers.media import stores

UPLOAD = "0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@dataclass
class Backend:
    """One store, with what a client would do to it: upload bytes, read a stored variant back."""

    settings: Settings
    upload: Callable[[bytes], Awaitable[None]]
    read: Callable[[str], Awaitable[bytes | None]]

    @property
    def files(self) -> stores.Files:
        return stores.files_of(self.settings)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def local_backend(tmp_path: Path) -> Backend:
    settings = Settings(data_dir=tmp_path, jwt_secret="x" * 32)
    store = local_store(tmp_path)

    async def upload(data: bytes) -> None:
        store.begin(UPLOAD)
        with store.writer(UPLOAD, ORIGINAL) as file:
            file.write(data)

    async def read(variant: str) -> bytes | None:
        path = store.path(UPLOAD, variant)
        return path.read_bytes() if path.is_file() else None

    return Backend(settings, upload, read)


async def s3_backend(endpoint: str) -> Backend:
    settings = await s3_settings(endpoint)

    async def upload(data: bytes) -> None:  # as a client does: a PUT to the presigned URL
        url = await stores.files_of(settings).upload_url(UPLOAD, len(data), NOW + timedelta(hours=1), NOW)
        async with aiohttp.ClientSession() as http, http.put(url, data=data) as response:
            assert response.status == 200, await response.text()

    async def read(variant: str) -> bytes | None:
        async with s3_store(settings) as s3:
            url = await s3.download_url(UPLOAD, variant, Meta("image/jpeg", "a.jpg"), 60)
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return await response.read() if response.status == 200 else None

    return Backend(settings, upload, read)


@pytest.fixture(params=["local", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return local_backend(tmp_path)
    return await s3_backend(request.getfixturevalue("s3_endpoint"))


async def test_a_photo_is_checked_and_stored_upright_with_thumbnails(backend: Backend) -> None:
    await backend.upload(images.photo(2000, 1500, orientation=6))
    found = await backend.files.check(UPLOAD, max_bytes=10**8)
    assert found and (found.content_type, found.width, found.height, found.thumbnails) == (
        "image/jpeg",
        1500,
        2000,
        (320, 1280),
    )
    clean = await backend.read(ORIGINAL)
    assert clean and images.location_of(clean) == {} and len(clean) == found.size
    for width in (320, 1280):
        thumb = await backend.read(str(width))
        assert thumb
        with Image.open(io.BytesIO(thumb)) as image:
            assert image.format == "JPEG" and image.width == width


async def test_nothing_uploaded_yet_is_no_check(backend: Backend) -> None:
    assert await backend.files.check(UPLOAD, max_bytes=10**8) is None


async def test_a_corrupt_image_is_refused_and_dropped(backend: Backend) -> None:
    await backend.upload(images.photo(400, 300)[:600])  # truncated
    found = await backend.files.check(UPLOAD, max_bytes=10**8)
    assert found and found.code == "bad_request"
    await backend.files.drop(UPLOAD)
    assert await backend.read(ORIGINAL) is None


async def test_more_bytes_than_allowed_are_too_large(backend: Backend) -> None:
    await backend.upload(images.PDF + b"x" * 5000)
    found = await backend.files.check(UPLOAD, max_bytes=1000)
    assert found and found.code == "too_large"


async def test_a_deleted_upload_leaves_nothing(backend: Backend) -> None:
    await backend.upload(images.png(400, 300))
    assert await backend.files.check(UPLOAD, max_bytes=10**8)
    await backend.files.keep(UPLOAD, Meta("image/png", "a.png"))
    assert await backend.read(ORIGINAL) and await backend.read("320")
    await backend.files.delete(UPLOAD)
    await backend.files.delete(UPLOAD)  # a retry is harmless
    assert await backend.read(ORIGINAL) is None and await backend.read("320") is None


async def test_s3_the_unchecked_bytes_are_never_the_served_file(s3_endpoint: str) -> None:
    """A client may PUT its slot again: that only ever replaces the incoming object, which the check
    deletes, never the checked file others download."""
    backend = await s3_backend(s3_endpoint)
    await backend.upload(images.png(100, 80))
    assert await backend.read(ORIGINAL) is None  # nothing served before the check
    assert await backend.files.check(UPLOAD, max_bytes=10**8)
    served = await backend.read(ORIGINAL)
    await backend.upload(b"<html><script>alert(1)</script>")
    assert await backend.read(ORIGINAL) == served
    async with s3_store(backend.settings) as s3:
        assert await s3.incoming_size(UPLOAD) is not None  # the chore's delete takes it with the rest
        await s3.delete(UPLOAD)
        assert await s3.incoming_size(UPLOAD) is None


async def test_s3_downloads_carry_the_type_disposition_and_ranges(s3_endpoint: str) -> None:
    backend = await s3_backend(s3_endpoint)
    await backend.upload(images.PDF)
    assert await backend.files.check(UPLOAD, max_bytes=10**8)
    meta = Meta("application/pdf", "report été.pdf")
    await backend.files.keep(UPLOAD, meta)
    async with s3_store(backend.settings) as s3:
        assert await s3.meta(UPLOAD) == meta
        url = await s3.download_url(UPLOAD, ORIGINAL, meta, 120)
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200 and await response.read() == images.PDF
            assert response.headers["Content-Type"] == "application/pdf"
            assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''report%20%C3%A9t%C3%A9.pdf"
            assert response.headers["Cache-Control"] == "private, max-age=120"
            assert not any(name in response.headers for name in NOT_SENT_BY_S3)  # as documented
        async with http.get(url, headers={"Range": "bytes=2-5"}) as response:
            assert response.status == 206 and await response.read() == images.PDF[2:6]
            assert response.headers["Content-Range"] == f"bytes 2-5/{len(images.PDF)}"


async def test_s3_upload_urls_expire_with_their_slot_and_take_the_declared_size(s3_endpoint: str) -> None:
    """The bucket enforces a presigned URL's expiry and signed length (moto does not)."""
    files = stores.files_of(await s3_settings(s3_endpoint))
    url = await files.upload_url(UPLOAD, 1234, NOW + timedelta(seconds=900), NOW)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["900"] and urlsplit(url).path.endswith(f"/incoming/{UPLOAD}")
    # The length is signed too: the bucket refuses a body of any other size than the declared one.
    assert query["X-Amz-SignedHeaders"] == ["content-length;host"]


def test_local_and_s3_are_chosen_by_settings(tmp_path: Path) -> None:
    assert isinstance(stores.files_of(Settings(data_dir=tmp_path)), stores.LocalFiles)
    s3 = Settings(files_store="s3", s3_bucket="boochat-files")
    assert isinstance(stores.files_of(s3), stores.S3Files)
    assert isinstance(local_store(tmp_path), LocalStore)
