"""gateway.files with the S3 store (a real S3 API server, moto's): a signed download link is sent on
to a presigned GET of the bucket with the file's type and disposition; uploads never come here."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from support import images
from support.s3 import moto_server, s3_settings
from support.stack import free_ports

from boochat import filelinks
from boochat.filelinks import Link
from boochat.filestore import Meta
from boochat.s3store import s3_store
from boochat.settings import Settings
from contracts.envelope import Command, Reply
from gateway.files import Files

UPLOAD = "0123456789abcdef0123456789abcdef"


async def no_media(worker: str, command: Command) -> Reply:
    raise AssertionError("with S3 the gateway never asks media for a check")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
async def settings(s3_endpoint: str) -> Settings:
    return await s3_settings(s3_endpoint, jwt_secret="x" * 32, files_port=free_ports(1))


@pytest.fixture
async def files(settings: Settings) -> AsyncIterator[Files]:
    listener = Files(settings, no_media)
    await listener.start()
    yield listener
    await listener.stop()


def url(settings: Settings, method: str, variant: str = "original") -> str:
    link = Link(method, UPLOAD, variant, int(time.time()) + 60)  # type: ignore[arg-type]
    return filelinks.address(settings.files_base, filelinks.key_of(settings.links_secret), link)


async def stored(settings: Settings, data: bytes, meta: Meta) -> None:
    """A checked upload as media leaves it in the bucket."""
    async with s3_store(settings) as s3:
        await s3.client.put_object(Bucket=s3.bucket, Key=s3.key(UPLOAD, "original"), Body=data)
        await s3.write_meta(UPLOAD, meta)


async def test_a_download_is_sent_on_to_the_bucket_with_its_headers(files, settings) -> None:
    await stored(settings, images.PDF, Meta("application/pdf", "r.pdf"))
    async with aiohttp.ClientSession() as http:
        async with http.get(url(settings, "GET"), allow_redirects=False) as response:
            assert response.status == 307 and response.headers["Location"].startswith(settings.s3_endpoint_url or "")
        async with http.get(url(settings, "GET"), headers={"Range": "bytes=0-3"}) as response:
            assert response.status == 206 and await response.read() == images.PDF[:4]
            assert response.headers["Content-Type"] == "application/pdf"
            assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''r.pdf"


async def test_a_missing_file_is_404_and_a_forged_link_403(files, settings) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(url(settings, "GET"), allow_redirects=False) as response:
            assert response.status == 404
        async with http.get(url(settings, "GET") + "x", allow_redirects=False) as response:
            assert response.status == 403


async def test_uploads_do_not_come_here(files, settings) -> None:
    async with aiohttp.ClientSession() as http, http.put(url(settings, "PUT"), data=b"x") as response:
        assert response.status == 404
