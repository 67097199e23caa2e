"""The media domain, sans I/O: types from bytes, the limits of a slot, checks and claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support import images

from contracts.requests import CreateUpload
from workers.media import domain
from workers.media.domain import Found, Limits

NOW = datetime(2026, 12, 1, tzinfo=UTC)
LIMITS = Limits(max_bytes=1000, quota_bytes=5000, slot_seconds=3600)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (images.photo(50, 40), "image/jpeg"),
        (images.png(), "image/png"),
        (b"GIF89a" + bytes(10), "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
        (images.PDF, "application/pdf"),
        (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime"),
        (b"\x00\x00\x00\x20ftypM4A ", "audio/mp4"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"),
        (b"OggS\x00\x02", "audio/ogg"),
        (b"ID3\x04\x00", "audio/mpeg"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(8), domain.OLE),
        (b"PK\x03\x04" + bytes(26) + b"mimetypeapplication/vnd.oasis.opendocument.textPK", domain.ODF[0]),
        (b"PK\x03\x04" + bytes(26) + b"[Content_Types].xml....word/document.xml", domain.OOXML[b"word/"]),
        (b"PK\x03\x04" + bytes(26) + b"notes.txt", "application/zip"),
        ("Grüße, see you at eight\n".encode(), "text/plain"),
        (images.EXECUTABLE, None),
        (b"plain text with a \x00 in it", None),
        (b"<html>\x1b[31m", None),
        (b"", None),
    ],
)
def test_the_type_comes_from_the_bytes(head: bytes, expected: str | None) -> None:
    assert domain.sniff(head[: domain.SNIFF_BYTES]) == expected


def test_text_cut_inside_a_character_is_still_text() -> None:
    assert domain.sniff("é".encode() * 10 + "é".encode()[:1]) == "text/plain"


def ask(**changes) -> CreateUpload:
    return CreateUpload(**{"room_id": "r", "name": "beach.jpg", "content_type": "image/jpeg", "size": 100, **changes})


def test_a_slot_is_refused_over_the_size_limit_or_the_quota_or_for_an_unknown_type() -> None:
    state, [fact] = domain.open_upload("u", "ann", ask(), stored=0, limits=LIMITS, now=NOW)
    assert (state.status, state.expires_at, fact.type) == ("waiting", NOW + timedelta(hours=1), "upload.created")
    with pytest.raises(domain.TooLargeError) as big:
        domain.open_upload("u", "ann", ask(size=1001), 0, LIMITS, NOW)
    assert big.value.code == "too_large"
    with pytest.raises(domain.TooLargeError, match="quota"):
        domain.open_upload("u", "ann", ask(size=900), 4200, LIMITS, NOW)
    with pytest.raises(domain.FileTypeError) as odd:
        domain.open_upload("u", "ann", ask(content_type="application/x-msdownload"), 0, LIMITS, NOW)
    assert odd.value.details == {"data.content_type": "this type of file is not accepted"}


def waiting(size: int = 100) -> domain.UploadState:
    return domain.open_upload("u", "ann", ask(size=size), 0, LIMITS, NOW)[0]


def test_a_checked_image_becomes_a_ready_attachment() -> None:
    state = waiting()
    found = Found(90, "image/jpeg", 640, 480, "data:image/jpeg;base64,AA", (320,))
    [fact], reply = domain.checked(state, found, LIMITS.max_bytes)
    assert fact.type == "upload.checked" and state.status == "ready"
    assert reply.attachment is not None and reply.attachment.kind == "image" and reply.attachment.size == 90
    assert domain.checked(state, found, LIMITS.max_bytes) == ([], reply)  # checked twice: the same


@pytest.mark.parametrize(
    ("found", "code"),
    [
        (Found(101, "image/jpeg"), "too_large"),  # more than declared
        (Found(50, "application/x-elf"), "bad_request"),
        (Found(50, None, code="bad_request", reason="corrupt"), "bad_request"),
    ],
)
def test_a_failed_check_says_why(found: Found, code: str) -> None:
    state = waiting()
    [fact], reply = domain.checked(state, found, LIMITS.max_bytes)
    assert (state.status, reply.attachment, reply.code) == ("failed", None, code) and reply.reason


def ready(upload_id: str, owner: str = "ann", room: str = "r") -> domain.UploadState:
    state = domain.open_upload(upload_id, owner, ask(room_id=room), 0, LIMITS, NOW)[0]
    domain.checked(state, Found(50, "application/pdf"), LIMITS.max_bytes)
    return state


def test_claims_take_the_senders_ready_uploads_for_the_room_once() -> None:
    states = {"a": ready("a"), "b": ready("b"), "bob": ready("bob", owner="bob"), "elsewhere": ready("x", room="s")}
    claimed, attachments = domain.claim(states, ["b", "a"], "ann", "r", "item1")
    assert [a.id for a in attachments] == ["b", "a"] and [f.type for _, f in claimed] == ["upload.attached"] * 2
    assert domain.claim(states, ["a"], "ann", "r", "item1")[0] == []  # again, for the same item
    for ids, reason in [
        (["a"], "another message"),
        (["bob"], "no upload bob"),
        (["elsewhere"], "no upload elsewhere"),
        (["nope"], "no upload nope"),
    ]:
        with pytest.raises(domain.AttachmentError) as refused:
            domain.claim(states, ids, "ann", "r", "item2")
        assert reason in refused.value.details["data.attachments"]
    states["w"] = waiting()
    with pytest.raises(domain.AttachmentError) as early:
        domain.claim(states, ["w"], "ann", "r", "item2")
    assert "not ready" in early.value.details["data.attachments"]


def test_unattached_uploads_are_forgotten_after_a_day() -> None:
    state = waiting()
    assert not domain.forgotten(state, NOW + timedelta(hours=23))
    assert domain.forgotten(state, NOW + timedelta(days=1))
    state.item_id = "item"
    assert not domain.forgotten(state, NOW + timedelta(days=9))
    assert [f.type for f in domain.delete(state)] == ["upload.deleted"] and domain.delete(state) == []


def test_complete_upload_is_the_uploaders_and_answers_the_checks_outcome() -> None:
    ask = CreateUpload(room_id="r", name="a.pdf", content_type="application/pdf", size=100)
    state, _ = domain.open_upload("u" * 32, "ann", ask, 0, LIMITS, NOW)
    assert domain.completing(state, "ann") is state
    for stranger, found in (("bob", state), ("ann", None)):
        with pytest.raises(domain.UploadNotFoundError):
            domain.completing(found, stranger)
    facts, waiting = domain.checked(state, None, LIMITS.max_bytes)  # nothing PUT yet: still waiting
    assert facts == [] and state.status == "waiting" and waiting.code == "bad_request"
    with pytest.raises(domain.UploadFailedError) as refused:
        domain.completed(waiting)
    assert refused.value.code == "bad_request" and refused.value.details == {"data.upload_id": waiting.reason}
    _, ready = domain.checked(state, Found(len(images.PDF), "application/pdf"), LIMITS.max_bytes)
    assert domain.completed(ready).attachment == state.attachment
    too_large = domain.checked(domain.UploadState(**{**vars(state), "status": "waiting"}), Found(5000), 1000)[1]
    with pytest.raises(domain.UploadFailedError) as refused:
        domain.completed(too_large)
    assert refused.value.code == "too_large"
