"""The gateway's files listener (PROTOCOL.md, Photos and files): uploads' PUTs and downloads' GETs
at signed, expiring addresses (``boochat.filelinks``), streamed to and from the store
(``boochat.filestore``), never held whole in memory.

It is a plain HTTP server of its own (aiohttp, on ``BOOCHAT_FILES_PORT``) because the WebSocket
server's ``process_request`` sees a request's head only and cannot read, let alone stream, a body.
The gateway stays thin here too: it checks the signature, moves bytes, and asks the media worker to
check what was stored (``upload_received``), answering the PUT with its outcome. With the S3 store
(``BOOCHAT_FILES_STORE=s3``) no bytes pass here: uploads go to presigned URLs of the bucket, and a
download link is checked here and sent on to a presigned GET.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import uuid
from typing import Any

import structlog
from aiohttp import web

from boochat import filelinks
from boochat.filelinks import ORIGINAL
from boochat.filestore import local_store
from boochat.s3store import s3_store
from boochat.settings import Settings
from contracts.envelope import Command
from contracts.internal import UploadChecked, UploadReceived
from gateway.calendar import Call

log = structlog.get_logger("gateway.files")
CHUNK = 256 * 1024
WORKER = "media"


class Files:
    def __init__(self, settings: Settings, call: Call) -> None:
        self._settings = settings
        self._call = call
        self._key = filelinks.key_of(settings.links_secret)
        self._store = local_store(settings.data_dir)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def port(self) -> int:
        assert self._runner is not None
        port: int = self._runner.addresses[0][1]
        return port

    async def start(self) -> None:
        app = web.Application(middlewares=[cors(page_origins(self._settings))])
        app.router.add_route("*", "/{path:.*}", self._handle)
        # No access log: every address it would write holds a signature, a secret of its own.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._settings.gateway_host, self._settings.files_port)
        try:
            await self._site.start()
        except OSError as error:  # chat goes on without files: uploads answer 503 (no listener)
            log.error("files_listener_failed", port=self._settings.files_port, error=str(error))
            return
        log.info("files_listening", port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("PUT", "GET", "HEAD"):
            return _plain(405, "method not allowed\n", {"Allow": "GET, HEAD, PUT"})
        link = filelinks.verify(self._key, request.method, request.path, request.query, time.time())
        if link is None:
            return _plain(403, "this address is not valid (expired, or not signed for this)\n")
        if self._settings.files_store == "s3":
            return await self._s3(link)
        if request.method == "PUT":
            return await self._put(request, link.upload_id)
        return await self._get(link)

    async def _s3(self, link: filelinks.Link) -> web.StreamResponse:
        """With S3 the bytes never pass here: uploads go to the presigned URL of their slot, and a
        download is sent on to a presigned GET (the same type and disposition; PROTOCOL.md says
        which headers S3 cannot add), valid no longer than the link."""
        if link.method == "PUT":
            return _plain(404, "uploads go to the slot's own address\n")
        async with s3_store(self._settings) as s3:
            meta = await s3.meta(link.upload_id)
            if meta is None:
                return _plain(404, "not found\n")
            seconds = max(1, link.expires - int(time.time()))
            url = await s3.download_url(link.upload_id, link.variant, meta, seconds)
        return web.Response(status=307, headers={"Location": url, "Cache-Control": "no-store"})

    async def _put(self, request: web.Request, upload_id: str) -> web.StreamResponse:
        declared, limit = request.content_length, self._settings.max_upload_bytes
        if declared is None:
            return _plain(411, "Content-Length is required\n")
        if declared > limit:
            return _error(422, "too_large", f"files may hold at most {limit} bytes")
        if not await asyncio.to_thread(self._store.begin, upload_id):
            return _plain(403, "this address was used already\n")
        try:
            await self._receive(request, upload_id, min(declared, limit))
        except _TooLargeError:
            return _error(422, "too_large", "more bytes than Content-Length or the largest file allowed")
        command = Command(
            type="upload_received",
            id=uuid.uuid4().hex,
            user_id="-",
            data=UploadReceived(upload_id=upload_id).model_dump(),
        )
        reply = await self._call(WORKER, command)
        if reply.error is not None:
            return _error(503, "unavailable", "files are unavailable now: ask for a new upload")
        checked = UploadChecked.model_validate(reply.ok)
        if checked.attachment is None:
            return _error(422, checked.code or "bad_request", checked.reason or "refused")
        return web.json_response({"attachment": checked.attachment.model_dump(mode="json")}, status=201)

    async def _receive(self, request: web.Request, upload_id: str, limit: int) -> None:
        """The body to the store, a chunk at a time (each written off the event loop)."""
        received = 0
        with self._store.writer(upload_id, ORIGINAL) as file:
            async for chunk in request.content.iter_chunked(CHUNK):
                received += len(chunk)
                if received > limit:
                    raise _TooLargeError
                await asyncio.to_thread(file.write, chunk)

    async def _get(self, link: filelinks.Link) -> web.StreamResponse:
        meta = await asyncio.to_thread(self._store.meta, link.upload_id)
        path = self._store.path(link.upload_id, link.variant)
        if meta is None or not await asyncio.to_thread(path.is_file):
            return _plain(404, "not found\n")
        content_type = meta.content_type if link.variant == ORIGINAL else "image/jpeg"
        inline = content_type.startswith("image/")
        quoted = urllib.parse.quote(meta.name, safe="")
        headers = {
            "Content-Type": content_type,
            "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quoted}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",  # never run as a page of ours
            "Cache-Control": f"private, max-age={max(0, link.expires - int(time.time()))}",
            "Referrer-Policy": "no-referrer",
        }
        return web.FileResponse(path, chunk_size=CHUNK, headers=headers)  # ranges, HEAD, streamed


def page_origins(settings: Settings) -> frozenset[str]:
    """The origins whose pages may PUT and read here: ``BOOCHAT_ALLOWED_ORIGINS``, else the web client's own."""
    if settings.origins:
        return frozenset(settings.origins)
    parts = urllib.parse.urlsplit(settings.public_base)
    return frozenset({f"{parts.scheme}://{parts.netloc}"})


def cors(origins: frozenset[str]) -> Any:
    """CORS for the web client, whose page is another origin (another port): it answers the
    preflight of a PUT with its Content-Type, and lets the page read every answer (201 or the 422's
    reason). Links are capabilities and carry no cookie, so credentials are never allowed."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin in origins
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allowed:
                return _plain(403, "origin not allowed\n")
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, PUT"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        if allowed:
            assert origin is not None
            response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        return response

    return middleware


class _TooLargeError(Exception):
    pass


def _plain(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text, headers=headers)


def _error(status: int, code: str, message: str) -> web.Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")
