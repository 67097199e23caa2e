"""Uploads: their state and rules, sans I/O (PROTOCOL.md, Photos and files).

An upload is made for a room by a member (``open_upload``), checked once its bytes are stored
(``sniff`` names the type from the bytes; ``checked`` records what the check found), attached to one
message (``claim``), and deleted with its message, or a day after it was made when nobody attached
it (``delete``).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.envelope import Fact
from contracts.errors import ErrorCode, Rejected
from contracts.events import UploadChanged, UploadRecord
from contracts.internal import UploadChecked
from contracts.requests import CreateUpload, UploadCompleted
from contracts.shapes import Attachment, AttachmentKind

UNATTACHED_FOR = timedelta(days=1)  # an upload nobody attached is deleted after this
OCTET_STREAM = "application/octet-stream"  # a client that does not know: the bytes will say

IMAGES = ("image/jpeg", "image/png", "image/gif", "image/webp")
OOXML = {
    b"word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    b"xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    b"ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
ODF = (
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
)
OLE = "application/x-ole-storage"  # .doc, .xls, .ppt: one container format, told apart by name only
ALLOWED: frozenset[str] = frozenset(
    {
        *IMAGES,
        "video/mp4",
        "video/quicktime",
        "video/webm",
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "audio/mp4",
        "application/pdf",
        "application/zip",
        "text/plain",
        *OOXML.values(),
        *ODF,
        OLE,
    }
)
# What clients may declare: the allowlist, its usual aliases, and "don't know".
DECLARABLE = ALLOWED | {
    "image/jpg",
    "audio/mp3",
    "audio/x-wav",
    "audio/wave",
    "audio/x-m4a",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/x-zip-compressed",
    OCTET_STREAM,
}
SNIFF_BYTES = 8192  # how much of a file ``sniff`` reads


class MediaError(Rejected):
    """The base of the media worker's refusals."""


class TooLargeError(MediaError):
    code: ErrorCode = "too_large"


class FileTypeError(MediaError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__("invalid data", {path: reason})


class AttachmentError(MediaError):
    def __init__(self, reason: str) -> None:
        super().__init__("invalid data", {"data.attachments": reason})


class UploadNotFoundError(MediaError):
    code: ErrorCode = "not_found"


class UploadFailedError(MediaError):
    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason, {"data.upload_id": reason})
        self.code = code


@dataclass
class UploadState:
    id: str
    owner_id: str
    room_id: str
    name: str
    declared_type: str
    size: int  # declared until checked, then actual
    created_at: datetime
    expires_at: datetime  # of its PUT slot
    status: str = "waiting"  # "waiting", "ready", "failed", "deleted" (UploadRecord's)
    attachment: Attachment | None = None
    item_id: str | None = None
    reason: str | None = None
    thumbnails: list[int] = field(default_factory=list)

    def record(self) -> UploadRecord:
        return UploadRecord(
            id=self.id,
            owner_id=self.owner_id,
            room_id=self.room_id,
            name=self.name,
            status=self.status,  # type: ignore[arg-type]  # one of UploadRecord's, by the rules here
            size=self.size,
            attachment=self.attachment,
            item_id=self.item_id,
            reason=self.reason,
        )


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    quota_bytes: int
    slot_seconds: int


@dataclass(frozen=True)
class Found:
    """What checking the stored bytes found: a type, or why the file is refused (``code``, ``reason``)."""

    size: int
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    placeholder: str | None = None
    thumbnails: tuple[int, ...] = ()
    code: ErrorCode | None = None
    reason: str | None = None


def _fact(type: str, state: UploadState) -> Fact:
    return Fact(type, state.id, UploadChanged(upload=state.record()))


def open_upload(
    upload_id: str, owner_id: str, data: CreateUpload, stored: int, limits: Limits, now: datetime
) -> tuple[UploadState, list[Fact]]:
    """A new upload slot for a member (checked by the caller); ``stored``: the bytes of the owner's
    uploads kept now."""
    if data.content_type.lower() not in DECLARABLE:
        raise FileTypeError("data.content_type", "this type of file is not accepted")
    if data.size > limits.max_bytes:
        raise TooLargeError(f"files may hold at most {limits.max_bytes} bytes")
    if stored + data.size > limits.quota_bytes:
        raise TooLargeError(f"over your storage quota of {limits.quota_bytes} bytes")
    state = UploadState(
        id=upload_id,
        owner_id=owner_id,
        room_id=data.room_id,
        name=data.name,
        declared_type=data.content_type.lower(),
        size=data.size,
        created_at=now,
        expires_at=now + timedelta(seconds=limits.slot_seconds),
    )
    return state, [_fact("upload.created", state)]


def checked(state: UploadState, found: Found | None, max_bytes: int) -> tuple[list[Fact], UploadChecked]:
    """The outcome of checking a waiting upload's bytes (``None``: none received yet); an upload
    checked before answers the same."""
    if state.status == "ready" and state.attachment is not None:
        return [], UploadChecked(attachment=state.attachment)
    if state.status != "waiting":
        return [], UploadChecked(code="bad_request", reason=state.reason or "this upload is gone")
    if found is None:
        return [], UploadChecked(code="bad_request", reason="the file has not been uploaded yet")
    code, reason = found.code, found.reason
    if code is None and (found.size > state.size or found.size > max_bytes):
        code, reason = "too_large", "more bytes than declared or than the largest file allowed"
    if code is None and found.content_type not in ALLOWED:
        code, reason = "bad_request", "this type of file is not accepted"
    if code is not None or found.content_type is None:
        state.status, state.reason = "failed", reason or "the file could not be read"
        return [_fact("upload.checked", state)], UploadChecked(code=code or "bad_request", reason=state.reason)
    state.status, state.size, state.thumbnails = "ready", found.size, list(found.thumbnails)
    state.attachment = Attachment(
        id=state.id,
        name=state.name,
        content_type=found.content_type,
        kind=kind_of(found.content_type),
        size=found.size,
        width=found.width,
        height=found.height,
        placeholder=found.placeholder,
        thumbnails=list(found.thumbnails),
    )
    return [_fact("upload.checked", state)], UploadChecked(attachment=state.attachment)


def completing(state: UploadState | None, user_id: str) -> UploadState:
    """The caller's own upload, for ``complete_upload`` (anyone else's is unknown to them)."""
    if state is None or state.owner_id != user_id or state.status == "deleted":
        raise UploadNotFoundError("no such upload")
    return state


def completed(reply: UploadChecked) -> UploadCompleted:
    """``complete_upload``'s answer: the attachment, or the check's refusal as an error."""
    if reply.attachment is None:
        raise UploadFailedError(reply.code or "bad_request", reply.reason or "the file was refused")
    return UploadCompleted(attachment=reply.attachment)


def claim(
    states: dict[str, UploadState], ids: list[str], owner_id: str, room_id: str, item_id: str
) -> tuple[list[tuple[UploadState, Fact]], list[Attachment]]:
    """The uploads ``ids`` made the item's attachments: each the sender's, for the room, ready, and
    not another item's. Claiming them again for the same item changes nothing."""
    claimed, attachments = [], []
    for upload_id in ids:
        state = states.get(upload_id)
        if state is None or state.owner_id != owner_id or state.room_id != room_id:
            raise AttachmentError(f"no upload {upload_id} of yours for this room")
        if state.status != "ready" or state.attachment is None:
            raise AttachmentError(f"upload {upload_id} is not ready")
        if state.item_id not in (None, item_id):
            raise AttachmentError(f"upload {upload_id} is attached to another message")
        attachments.append(state.attachment)
        if state.item_id is None:
            claimed.append(state)
    facts = []
    for state in claimed:
        state.item_id = item_id
        facts.append((state, _fact("upload.attached", state)))
    return facts, attachments


def delete(state: UploadState) -> list[Fact]:
    if state.status == "deleted":
        return []
    state.status = "deleted"
    return [_fact("upload.deleted", state)]


def forgotten(state: UploadState, now: datetime) -> bool:
    """An upload nobody attached, a day after it was made: its files go."""
    return state.item_id is None and state.status != "deleted" and now - state.created_at >= UNATTACHED_FOR


def kind_of(content_type: str) -> AttachmentKind:
    family = content_type.partition("/")[0]
    return family if family in ("image", "video", "audio") else "file"  # type: ignore[return-value]


def sniff(head: bytes) -> str | None:
    """The type the first bytes of a file say it is (at least ``SNIFF_BYTES`` of them, or all), or
    None when it is nothing Boochat takes. Magic numbers only: images are decoded later too."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if head[8:12] == b"WEBP" else "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "video/quicktime" if brand == b"qt  " else "audio/mp4" if brand in (b"M4A ", b"M4B ") else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else None
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return OLE
    if head.startswith(b"PK\x03\x04"):
        return _zipped(head)
    return "text/plain" if _text(head) else None


def _zipped(head: bytes) -> str:
    """An OpenDocument file names its type first (an uncompressed ``mimetype`` entry); an Office
    Open XML file has its parts' folders in the first entries' names."""
    if head[30:38] == b"mimetype":
        named = head[38:120].split(b"PK", 1)[0].decode("ascii", "replace")
        if named in ODF:
            return named
    for folder, content_type in OOXML.items():
        if folder in head:
            return content_type
    return "application/zip"


def _text(head: bytes) -> bool:
    """UTF-8 text without control characters (tabs and line ends aside); the head may end inside a
    character."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return bool(text) and all(c >= " " or c in "\t\n\r" for c in text) and "\x7f" not in text
