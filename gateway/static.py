"""The web client's files (``gateway/web/``) and ``/config.json``, served on the clients' port.

Files are read once at start-up into a table keyed by URL path, so a request can only ever name one
of them (no path reaches the file system). Every file carries a strong ETag and ``no-cache``: the
ES modules import each other by plain names, so browsers revalidate (a 304 costs one round trip)
rather than mix an old module with a new one after an upgrade.
"""

from __future__ import annotations

import email.utils
import hashlib
import http
import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from boochat.settings import Settings

ROOT = Path(__file__).parent / "web"
INVITE = "/invite/"  # invite links (PROTOCOL.md, Web client): the page, which reads the code
MAX_CODE = 128
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    cache_control: str = "no-cache"


class Static:
    """GET and HEAD of ``/`` (index.html, at ``/invite/<code>`` too), ``/<file>`` and ``/config.json``."""

    def __init__(self, settings: Settings, root: Path = ROOT) -> None:
        self._assets = {f"/{path.name}": _asset(path.read_bytes(), TYPES[path.suffix]) for path in _files(root)}
        self._assets["/"] = self._assets["/index.html"]
        config = {"google_client_id": settings.google_client_id, "dev_login": settings.dev_login}
        self._assets["/config.json"] = _asset(json.dumps(config).encode(), TYPES[".json"], "no-store")
        self._policy = policy(settings)

    def __contains__(self, path: str) -> bool:
        return path in self._assets or _invite_page(path)

    def respond(self, request: Request, path: str) -> Response:
        if request.method not in ("GET", "HEAD"):
            text = b"method not allowed\n"
            headers = {"Allow": "GET, HEAD", "Content-Length": str(len(text))}
            return _response(http.HTTPStatus.METHOD_NOT_ALLOWED, text, headers)
        asset = self._assets["/"] if _invite_page(path) else self._assets[path]
        headers = {
            "Content-Type": asset.content_type,
            "Cache-Control": asset.cache_control,
            "ETag": asset.etag,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": self._policy,
        }
        if asset.etag in _tags(request.headers.get("If-None-Match", "")):
            return _response(http.HTTPStatus.NOT_MODIFIED, b"", headers)
        body = b"" if request.method == "HEAD" else asset.body
        return _response(http.HTTPStatus.OK, body, headers | {"Content-Length": str(len(asset.body))})


def policy(settings: Settings) -> str:
    """The page talks to its own origin and to the files listener (uploads' PUTs, photos); Google's
    sign-in script and frame are allowed for the button, which the client loads only when the server
    names a Google client id."""
    files = _origin(settings.files_base)
    if settings.files_store == "s3":  # uploads' PUTs go to the bucket, downloads are sent on to it
        files += f" {_origin(settings.s3_endpoint_url) if settings.s3_endpoint_url else 'https://*.amazonaws.com'}"
    return (
        f"default-src 'self'; connect-src 'self' {files}; img-src 'self' data: https: {files}; "
        "script-src 'self' https://accounts.google.com/gsi/client; "
        "style-src 'self' https://accounts.google.com/gsi/style; frame-src https://accounts.google.com/"
    )


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _invite_page(path: str) -> bool:
    """``/invite/<code>``: an invite link, which the page itself reads."""
    code = path.removeprefix(INVITE)
    return path.startswith(INVITE) and 0 < len(code) <= MAX_CODE and "/" not in code


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.iterdir() if path.is_file() and path.suffix in TYPES)


def _asset(body: bytes, content_type: str, cache_control: str = "no-cache") -> Asset:
    return Asset(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"', cache_control)


def _tags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


def _response(status: http.HTTPStatus, body: bytes, headers: dict[str, str]) -> Response:
    fixed = {"Date": email.utils.formatdate(usegmt=True), "Connection": "close"}
    return Response(status.value, status.phrase, Headers({**fixed, **headers}), body)
