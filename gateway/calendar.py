"""Calendar files over plain HTTP (PROTOCOL.md, Calendars and reminders): ``/calendar/<token>.ics``
(a user's feed) and ``/calendar/<token>/<meetup_id>.ics`` (one meetup, "Add to calendar").

The gateway stays thin: it checks the path's shape, asks the meetups worker (``calendar_file``, the
request path every worker request takes) and turns its answer into HTTP. Whatever makes a file
unknown (a token never issued or reset since, a meetup its owner does not attend) is one 404 with
the same body, so an answer says nothing about which.
"""

from __future__ import annotations

import email.utils
import http
import re
import uuid
from collections.abc import Awaitable, Callable

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from contracts.envelope import Command, Reply
from contracts.internal import CalendarFile, CalendarText

PREFIX = "/calendar/"
PATH = re.compile(r"/calendar/(?P<token>[A-Za-z0-9_-]{16,128})(?:/(?P<meetup_id>[A-Za-z0-9_-]{1,128}))?\.ics")
MAX_TAGS = 20  # entity tags of If-None-Match passed on; a client has one
WORKER = "meetups"

Call = Callable[[str, Command], Awaitable[Reply]]


class Calendars:
    """GET and HEAD of calendar files, answered by asking the meetups worker through ``call``."""

    def __init__(self, call: Call) -> None:
        self._call = call

    def __contains__(self, path: str) -> bool:
        return path.startswith(PREFIX)

    async def respond(self, request: Request, path: str) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _plain(http.HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed\n", {"Allow": "GET, HEAD"})
        if (match := PATH.fullmatch(path)) is None:
            return _plain(http.HTTPStatus.NOT_FOUND, "not found\n")
        asked = CalendarFile(
            token=match["token"],
            meetup_id=match["meetup_id"],
            if_none_match=_tags(request.headers.get("If-None-Match", ""))[:MAX_TAGS],
        )
        command = Command(type="calendar_file", id=uuid.uuid4().hex, user_id="-", data=asked.model_dump(mode="json"))
        reply = await self._call(WORKER, command)
        if reply.error is not None:
            if reply.error.code == "not_found":
                return _plain(http.HTTPStatus.NOT_FOUND, "not found\n")
            return _plain(http.HTTPStatus.SERVICE_UNAVAILABLE, "calendars are unavailable, try again later\n")
        text = CalendarText.model_validate(reply.ok)
        headers = {
            "ETag": text.etag,
            "Cache-Control": "private, no-cache",  # a secret address: no shared cache keeps it
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        if match["meetup_id"] is not None:
            headers["Content-Disposition"] = 'attachment; filename="meetup.ics"'
        if text.body is None:
            return _response(http.HTTPStatus.NOT_MODIFIED, b"", headers)
        body = text.body.encode()
        headers |= {"Content-Type": "text/calendar; charset=utf-8", "Content-Length": str(len(body))}
        return _response(http.HTTPStatus.OK, b"" if request.method == "HEAD" else body, headers)


def _tags(header: str) -> list[str]:
    """The entity tags of an If-None-Match header (weak ones compared as strong: RFC 9110's weak
    comparison, which If-None-Match uses)."""
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def _plain(status: http.HTTPStatus, text: str, headers: dict[str, str] | None = None) -> Response:
    body = text.encode()
    plain = {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body))}
    return _response(status, body, plain | (headers or {}))


def _response(status: http.HTTPStatus, body: bytes, headers: dict[str, str]) -> Response:
    fixed = {"Date": email.utils.formatdate(usegmt=True), "Connection": "close"}
    return Response(status.value, status.phrase, Headers({**fixed, **headers}), body)
