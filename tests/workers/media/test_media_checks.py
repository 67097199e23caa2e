"""Checking stored bytes with Pillow: location stripped, upright, thumbnails; bad images refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from support import images

from boochat.filestore import LocalStore
from workers.media import checks

UPLOAD = "0123456789abcdef0123456789abcdef"


def stored(tmp_path, data: bytes) -> LocalStore:
    store = LocalStore(tmp_path)
    store.begin(UPLOAD)
    with store.writer(UPLOAD, "original") as file:
        file.write(data)
    return store


def test_a_photo_is_stored_upright_without_its_location_with_thumbnails(tmp_path) -> None:
    original = images.photo(2000, 1500, orientation=6)  # taken sideways: upright it is 1500 x 2000
    assert images.location_of(original)
    store = stored(tmp_path, original)
    found = checks.check(store, UPLOAD, max_bytes=10**8)
    assert (found.content_type, found.width, found.height, found.thumbnails) == ("image/jpeg", 1500, 2000, (320, 1280))
    clean = store.path(UPLOAD, "original").read_bytes()
    assert images.location_of(clean) == {} and b"PhoneCo" not in clean and found.size == len(clean)
    for width in (320, 1280):
        with Image.open(store.path(UPLOAD, str(width))) as thumb:
            assert thumb.format == "JPEG" and thumb.width == width and not thumb.getexif()
    assert found.placeholder and found.placeholder.startswith("data:image/jpeg;base64,")
    assert len(found.placeholder) < 1500


def test_a_small_transparent_png_needs_no_thumbnail(tmp_path) -> None:
    found = checks.check(stored(tmp_path, images.png(100, 80)), UPLOAD, max_bytes=10**8)
    assert (found.content_type, found.width, found.height, found.thumbnails) == ("image/png", 100, 80, ())


def test_other_files_are_kept_as_they_are(tmp_path) -> None:
    store = stored(tmp_path, images.PDF)
    found = checks.check(store, UPLOAD, max_bytes=10**8)
    assert (found.content_type, found.code, found.width) == ("application/pdf", None, None)
    assert store.path(UPLOAD, "original").read_bytes() == images.PDF


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (images.photo(400, 300)[:2000], "corrupt or truncated"),
        (b"\xff\xd8\xff\xe0" + bytes(500), "corrupt or truncated"),
        (images.EXECUTABLE, "not accepted"),
    ],
    ids=["truncated", "corrupt", "executable"],
)
def test_bad_files_are_refused_with_a_reason(tmp_path, data: bytes, reason: str) -> None:
    found = checks.check(stored(tmp_path, data), UPLOAD, max_bytes=10**8)
    assert found.code == "bad_request" and reason in (found.reason or "")


def test_a_decompression_bomb_is_refused(tmp_path, monkeypatch) -> None:
    """Pillow's pixel limit (lowered here, so the bomb is small): refused from the limit on."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000 * 1000)
    out = io.BytesIO()
    Image.new("L", (1200, 1000)).save(out, "PNG")  # a few kilobytes, 1.2 million pixels
    found = checks.check(stored(tmp_path, out.getvalue()), UPLOAD, max_bytes=10**8)
    assert (found.code, found.reason) == ("bad_request", "the image has too many pixels")


def test_more_than_the_limit_is_too_large(tmp_path) -> None:
    found = checks.check(stored(tmp_path, images.PDF), UPLOAD, max_bytes=10)
    assert found.code == "too_large"
