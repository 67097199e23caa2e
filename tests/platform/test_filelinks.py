"""boochat.filelinks: signed file addresses hold for one file, one method and until their expiry."""

from __future__ import annotations

import urllib.parse

import pytest

from boochat import filelinks
from boochat.filelinks import Link
from contracts.shapes import Attachment

KEY = filelinks.key_of("s" * 32)
UPLOAD = "0123456789abcdef0123456789abcdef"


def presented(url: str) -> tuple[str, dict[str, str]]:
    parts = urllib.parse.urlsplit(url)
    return parts.path, dict(urllib.parse.parse_qsl(parts.query))


def test_a_signed_address_is_accepted_until_it_expires() -> None:
    link = Link("PUT", UPLOAD, "original", 1000)
    path, query = presented(filelinks.address("http://files", KEY, link))
    assert filelinks.verify(KEY, "PUT", path, query, now=999) == link
    assert filelinks.verify(KEY, "PUT", path, query, now=1000) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda p, q: ("GET", p, q),  # another method
        lambda p, q: ("PUT", p.replace("0123", "1123", 1), q),  # another file
        lambda p, q: ("PUT", p, {**q, "expires": "2000"}),  # a later expiry
        lambda p, q: ("PUT", p, {**q, "signature": q["signature"][:-2] + "AA"}),  # a guess
        lambda p, q: ("PUT", p, {"expires": q["expires"]}),  # no signature
        lambda p, q: ("PUT", p.replace("original", "320"), q),  # a PUT of a thumbnail
        lambda p, q: ("PUT", "/files/../etc/passwd", q),  # not a file's path
        lambda p, q: ("DELETE", p, q),
    ],
)
def test_anything_changed_in_an_address_is_refused(change) -> None:
    path, query = presented(filelinks.address("http://files", KEY, Link("PUT", UPLOAD, "original", 1000)))
    method, path, query = change(path, query)
    assert filelinks.verify(KEY, method, path, query, now=10) is None


def test_another_secret_makes_other_signatures() -> None:
    link = Link("GET", UPLOAD, "original", 1000)
    path, query = presented(filelinks.address("http://files", KEY, link))
    assert filelinks.verify(filelinks.key_of("t" * 32), "GET", path, query, now=10) is None
    assert filelinks.verify(KEY, "HEAD", path, query, now=10) == link  # HEAD reads like GET


def test_no_secret_no_links() -> None:
    with pytest.raises(filelinks.NoSecretError):
        filelinks.key_of(None)


def test_an_attachment_gets_a_link_per_thumbnail() -> None:
    attachment = Attachment(id=UPLOAD, name="a.jpg", content_type="image/jpeg", kind="image", size=5, thumbnails=[320])
    links = filelinks.download("http://files", KEY, attachment, 1000)
    assert links.id == UPLOAD and set(links.thumbnails) == {"320"}
    path, query = presented(links.thumbnails["320"])
    assert filelinks.verify(KEY, "GET", path, query, now=10) == Link("GET", UPLOAD, "320", 1000)
