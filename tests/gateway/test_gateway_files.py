"""gateway.files, the files listener, with a fake media worker: signed PUTs streamed to the store
and answered with the check's outcome, ranged GETs, and every refusal."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import AsyncIterator

import aiohttp
import pytest
from support.stack import free_ports

from boochat import filelinks
from boochat.filelinks import Link
from boochat.filestore import Meta, local_store
from boochat.settings import Settings
from contracts.envelope import Command, Failure, Reply
from contracts.internal import UploadChecked
from contracts.shapes import Attachment
from gateway.files import Files

UPLOAD = "0123456789abcdef0123456789abcdef"
PICTURE = Attachment(id=UPLOAD, name="a.png", content_type="image/png", kind="image", size=4)


class FakeMedia:
    """Answers ``upload_received`` with ``answer``, remembering what it was asked."""

    def __init__(self) -> None:
        self.asked: list[Command] = []
        self.answer = Reply.of(UploadChecked(attachment=PICTURE))

    async def __call__(self, worker: str, command: Command) -> Reply:
        assert worker == "media" and command.type == "upload_received"
        self.asked.append(command)
        return self.answer


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(jwt_secret="x" * 32, files_port=free_ports(1), data_dir=tmp_path, max_upload_bytes=1000)


@pytest.fixture
async def files(settings: Settings) -> AsyncIterator[tuple[Files, FakeMedia]]:
    media = FakeMedia()
    listener = Files(settings, media)
    await listener.start()
    yield listener, media
    await listener.stop()


def url(settings: Settings, method: str, variant: str = "original", expires: int | None = None) -> str:
    link = Link(method, UPLOAD, variant, expires or int(time.time()) + 60)  # type: ignore[arg-type]
    return filelinks.address(settings.files_base, filelinks.key_of(settings.links_secret), link)


async def request(method: str, address: str, **options) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as http, http.request(method, address, **options) as response:
        return response.status, dict(response.headers), await response.read()


async def test_a_put_is_stored_then_checked_and_its_slot_is_used(files, settings) -> None:
    _, media = files
    status, _, body = await request("PUT", url(settings, "PUT"), data=b"\x89PNG")
    assert status == 201 and b'"attachment"' in body and len(media.asked) == 1
    assert local_store(settings.data_dir).path(UPLOAD, "original").read_bytes() == b"\x89PNG"
    assert (await request("PUT", url(settings, "PUT"), data=b"again"))[0] == 403


async def test_a_body_is_streamed_in_chunks(files, settings) -> None:
    async def chunks():
        for _ in range(10):
            yield b"x" * 50

    status, _, _ = await request("PUT", url(settings, "PUT"), data=chunks(), headers={"Content-Length": "500"})
    assert status == 201 and local_store(settings.data_dir).size(UPLOAD, "original") == 500


@pytest.mark.parametrize(
    ("make", "options", "status"),
    [
        (lambda s: url(s, "PUT", expires=int(time.time()) - 1), {"data": b"x"}, 403),  # expired
        (lambda s: url(s, "GET"), {"data": b"x"}, 403),  # signed for another method
        (lambda s: url(s, "PUT") + "0", {"data": b"x"}, 403),  # forged
        (lambda s: s.files_base + f"/files/{UPLOAD}/original", {"data": b"x"}, 403),  # unsigned
        (lambda s: url(s, "PUT"), {"data": b"x" * 1001}, 422),  # over the limit
    ],
    ids=["expired", "other-method", "forged", "unsigned", "too-large"],
)
async def test_refused_puts_store_nothing(files, settings, make, options, status) -> None:
    _, media = files
    assert (await request("PUT", make(settings), **options))[0] == status
    assert local_store(settings.data_dir).size(UPLOAD, "original") is None and media.asked == []


async def test_a_put_without_length_is_refused(files, settings) -> None:
    async def chunked():
        yield b"x"

    assert (await request("PUT", url(settings, "PUT"), data=chunked()))[0] == 411


async def test_a_failed_check_answers_its_reason_and_no_answer_is_503(files, settings) -> None:
    _, media = files
    media.answer = Reply.of(UploadChecked(code="bad_request", reason="the image is corrupt"))
    status, _, body = await request("PUT", url(settings, "PUT"), data=b"junk")
    assert status == 422 and b"the image is corrupt" in body
    local_store(settings.data_dir).delete(UPLOAD)
    media.answer = Reply(error=Failure(code="timeout", message="no answer"))
    assert (await request("PUT", url(settings, "PUT"), data=b"junk"))[0] == 503


async def test_gets_stream_ranges_with_safe_headers(files, settings) -> None:
    store = local_store(settings.data_dir)
    store.begin(UPLOAD)
    with store.writer(UPLOAD, "original") as file:
        file.write(bytes(range(256)))
    assert (await request("GET", url(settings, "GET")))[0] == 404  # not checked yet: no meta
    store.write_meta(UPLOAD, Meta("application/pdf", "Plan für Ann.pdf"))
    status, headers, body = await request("GET", url(settings, "GET"))
    assert (status, body, headers["Content-Type"]) == (200, bytes(range(256)), "application/pdf")
    assert headers["Content-Disposition"] == "attachment; filename*=UTF-8''Plan%20f%C3%BCr%20Ann.pdf"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"].startswith("private")
    status, headers, body = await request("GET", url(settings, "GET"), headers={"Range": "bytes=10-19"})
    assert (status, body, headers["Content-Range"]) == (206, bytes(range(10, 20)), "bytes 10-19/256")
    assert (await request("GET", url(settings, "GET"), headers={"Range": "bytes=900-"}))[0] == 416
    status, headers, body = await request("HEAD", url(settings, "GET"))
    assert (status, body, headers["Content-Length"]) == (200, b"", "256")
    assert (await request("GET", url(settings, "GET", expires=int(time.time()) - 1)))[0] == 403
    assert (await request("GET", url(settings, "GET", "320")))[0] == 404  # no thumbnail of a PDF
    assert (await request("DELETE", url(settings, "GET")))[0] == 405


async def test_the_listener_holds_no_whole_file_in_memory(tmp_path) -> None:
    """20 MB in and out: what Python allocates meanwhile stays far below the file's size."""
    settings = Settings(jwt_secret="x" * 32, files_port=free_ports(1), data_dir=tmp_path, max_upload_bytes=30_000_000)
    listener = Files(settings, FakeMedia())
    await listener.start()
    chunk = b"\xff" * 65536
    size = 300 * len(chunk)  # about 20 MB

    async def body():
        for _ in range(size // len(chunk)):
            yield chunk

    tracemalloc.start()
    try:
        headers = {"Content-Length": str(size)}
        status, _, _ = await request("PUT", url(settings, "PUT"), data=body(), headers=headers)
        local_store(settings.data_dir).write_meta(UPLOAD, Meta("application/octet-stream", "big.bin"))
        received = 0
        async with aiohttp.ClientSession() as http, http.get(url(settings, "GET")) as response:
            async for part in response.content.iter_chunked(len(chunk)):
                received += len(part)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await listener.stop()
    assert (status, received) == (201, size)
    assert peak < 5_000_000, peak


PAGE = "http://127.0.0.1:8765"  # the web client's origin for these settings (BOOCHAT_PUBLIC_URL unset)


async def test_the_web_clients_page_may_put_and_read_the_answers_across_origins(files, settings) -> None:
    """The page is another origin (another port): its PUT's preflight is answered, every answer readable."""
    ask = {"Origin": PAGE, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"}
    status, headers, _ = await request("OPTIONS", url(settings, "PUT"), headers=ask)
    assert (status, headers["Access-Control-Allow-Origin"]) == (204, PAGE)
    assert headers["Access-Control-Allow-Methods"] == "GET, HEAD, PUT"
    assert headers["Access-Control-Allow-Headers"] == "Content-Type"
    status, headers, _ = await request("PUT", url(settings, "PUT"), data=b"\x89PNG", headers={"Origin": PAGE})
    assert (status, headers["Access-Control-Allow-Origin"]) == (201, PAGE)
    status, headers, _ = await request("PUT", url(settings, "PUT"), data=b"x" * 1001, headers={"Origin": PAGE})
    assert (status, headers["Access-Control-Allow-Origin"]) == (422, PAGE)  # the reason is readable too
    status, headers, _ = await request("GET", url(settings, "GET"), headers={"Origin": PAGE})
    assert headers["Access-Control-Allow-Origin"] == PAGE and headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in headers


async def test_other_origins_get_no_cors(files, settings) -> None:
    other = {"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}
    status, headers, _ = await request("OPTIONS", url(settings, "PUT"), headers=other)
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    evil = {"Origin": other["Origin"]}
    status, headers, _ = await request("PUT", url(settings, "PUT"), data=b"\x89PNG", headers=evil)
    assert status == 201 and "Access-Control-Allow-Origin" not in headers  # a browser hides the answer


async def test_allowed_origins_replace_the_clients_own(tmp_path) -> None:
    origins = "https://chat.example"
    settings = Settings(jwt_secret="x" * 32, files_port=free_ports(1), data_dir=tmp_path, allowed_origins=origins)
    listener = Files(settings, FakeMedia())
    await listener.start()
    try:
        for origin, allowed in [("https://chat.example", True), (PAGE, False)]:
            ask = {"Origin": origin, "Access-Control-Request-Method": "PUT"}
            status, headers, _ = await request("OPTIONS", url(settings, "PUT"), headers=ask)
            assert (status == 204, headers.get("Access-Control-Allow-Origin") == origin) == (allowed, allowed)
    finally:
        await listener.stop()
