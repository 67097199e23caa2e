"""Signed file addresses (PROTOCOL.md, Photos and files), sans I/O: whoever holds one may PUT or GET
that one file, until it expires, and nothing else. The gateway's files listener checks them; the
workers that hand them out (media for uploads, messaging for downloads) make them.

The signature is an HMAC-SHA256 over the method, the upload id, the variant and the expiry, with a
key derived from the server's secret (``BOOCHAT_JWT_SECRET``), so it cannot be guessed or moved to
another file, method or time. The secret is ``BOOCHAT_FILES_SECRET``, else ``BOOCHAT_JWT_SECRET``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from contracts.requests import AttachmentLink
from contracts.shapes import Attachment

PREFIX = "/files/"
ORIGINAL = "original"
THUMBNAIL_WIDTHS = (320, 1280)
VARIANTS = (ORIGINAL, *(str(width) for width in THUMBNAIL_WIDTHS))
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
PATH = re.compile(r"/files/(?P<upload_id>[0-9a-f]{32})/(?P<variant>original|320|1280)")
Method = Literal["PUT", "GET"]


class NoSecretError(Exception):
    """File links need the server's secret, and none is set."""


@dataclass(frozen=True)
class Link:
    method: Method
    upload_id: str
    variant: str
    expires: int  # Unix time, in seconds

    @property
    def path(self) -> str:
        return f"{PREFIX}{self.upload_id}/{self.variant}"


def key_of(secret: str | None) -> bytes:
    """The links' own key, derived from the server's secret (never the secret itself)."""
    if not secret:
        raise NoSecretError("file links need BOOCHAT_FILES_SECRET or BOOCHAT_JWT_SECRET")
    return hmac.new(secret.encode(), b"boochat file links v1", hashlib.sha256).digest()


def signature(key: bytes, link: Link) -> str:
    signed = f"{link.method}\n{link.upload_id}\n{link.variant}\n{link.expires}".encode()
    return base64.urlsafe_b64encode(hmac.new(key, signed, hashlib.sha256).digest()).rstrip(b"=").decode()


def address(base: str, key: bytes, link: Link) -> str:
    """The link as a URL on the files listener at ``base``."""
    return f"{base}{link.path}?expires={link.expires}&signature={signature(key, link)}"


def verify(key: bytes, method: str, path: str, query: Mapping[str, str], now: float) -> Link | None:
    """The link a request presents, when it is well formed, signed for this method and not expired;
    else None (the caller answers 403, whatever was wrong)."""
    method = "GET" if method == "HEAD" else method
    match = PATH.fullmatch(path)
    expires = query.get("expires", "")
    if method not in ("PUT", "GET") or match is None or not expires.isascii() or not expires.isdigit():
        return None
    link = Link(method, match["upload_id"], match["variant"], int(expires))  # type: ignore[arg-type]
    if link.expires <= now or not hmac.compare_digest(signature(key, link), query.get("signature", "")):
        return None
    if method == "PUT" and link.variant != ORIGINAL:
        return None
    return link


def download(base: str, key: bytes, attachment: Attachment, expires: int) -> AttachmentLink:
    """An attachment's signed links (PROTOCOL.md, ``get_attachment_links``): the file and each thumbnail."""
    original = address(base, key, Link("GET", attachment.id, ORIGINAL, expires))
    thumbnails = {
        str(w): address(base, key, Link("GET", attachment.id, str(w), expires)) for w in attachment.thumbnails
    }
    return AttachmentLink(id=attachment.id, url=original, thumbnails=thumbnails)
