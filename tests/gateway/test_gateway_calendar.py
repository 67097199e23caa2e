"""Calendar files over HTTP (gateway.calendar), without sockets: what the meetups worker answers
becomes 200, 304, 404 or 503; the path's shape and the method are checked before asking."""

from __future__ import annotations

from websockets.datastructures import Headers
from websockets.http11 import Request

from contracts.envelope import Command, Failure, Reply
from gateway.calendar import Calendars

TOKEN = "A" * 43


class Worker:
    """The meetups worker, scripted: records what it is asked."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.asked: list[tuple[str, Command]] = []

    async def __call__(self, worker: str, command: Command) -> Reply:
        self.asked.append((worker, command))
        return self.reply


def request(path: str, **headers: str) -> Request:
    return Request(path, Headers(headers))


def ok(etag: str = '"t1"', body: str | None = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n") -> Reply:
    return Reply(ok={"etag": etag, "body": body})


async def test_a_feed_is_asked_of_meetups_and_served_as_text_calendar() -> None:
    worker = Worker(ok())
    path = f"/calendar/{TOKEN}.ics"
    response = await Calendars(worker).respond(request(path, **{"If-None-Match": 'W/"a", "b"'}), path)
    assert response.status_code == 200 and response.body == b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8" and response.headers["ETag"] == '"t1"'
    assert "Content-Disposition" not in response.headers
    [(name, command)] = worker.asked
    assert (name, command.type) == ("meetups", "calendar_file")
    assert command.data == {"token": TOKEN, "meetup_id": None, "if_none_match": ['"a"', '"b"']}


async def test_one_meetup_is_a_download_and_an_unchanged_file_is_304() -> None:
    path = f"/calendar/{TOKEN}/m1.ics"
    one = await Calendars(Worker(ok())).respond(request(path), path)
    assert one.headers["Content-Disposition"] == 'attachment; filename="meetup.ics"'
    same = await Calendars(Worker(ok(body=None))).respond(request(path), path)
    assert (same.status_code, same.body, same.headers["ETag"]) == (304, b"", '"t1"')


async def test_not_found_whatever_the_reason_and_503_when_meetups_does_not_answer() -> None:
    path = f"/calendar/{TOKEN}.ics"
    missing = await Calendars(Worker(Reply(error=Failure(code="not_found", message="not found")))).respond(
        request(path), path
    )
    assert (missing.status_code, missing.body) == (404, b"not found\n")
    down = await Calendars(Worker(Reply(error=Failure(code="timeout", message="slow")))).respond(request(path), path)
    assert down.status_code == 503


async def test_bad_paths_and_methods_are_refused_without_asking() -> None:
    worker = Worker(ok())
    calendars = Calendars(worker)
    for path in ("/calendar/short.ics", f"/calendar/{TOKEN}", f"/calendar/{TOKEN}/a/b.ics", "/calendar/%2e%2e.ics"):
        assert (await calendars.respond(request(path), path)).status_code == 404
    posted = Request(f"/calendar/{TOKEN}.ics", Headers(), method="POST")
    assert (await calendars.respond(posted, f"/calendar/{TOKEN}.ics")).status_code == 405
    assert worker.asked == []
