"""Helpers of the web client tests: people in browser contexts, signing in through the page."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, expect

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
Prepare = Callable[[BrowserContext], Awaitable[None]]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


class Wire:
    """A page's WebSockets, relayed through Playwright: it records what the page sends, can drop
    chosen frames on their way to the page, cut the connection and refuse new ones."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []  # frames from the page, in order
        self.refusing = False
        self._drops: list[tuple[Callable[[dict[str, Any]], bool], asyncio.Event]] = []
        self._open: list[WebSocketRoute] = []

    def drop(self, predicate: Callable[[dict[str, Any]], bool]) -> asyncio.Event:
        """Drop the next frame to the page that matches; the event is set once one was dropped."""
        dropped = asyncio.Event()
        self._drops.append((predicate, dropped))
        return dropped

    def inject(self, frame: dict[str, Any]) -> None:
        """Send ``frame`` to the page on every open connection, as if the server had sent it."""
        for route in self._open:
            route.send(json.dumps(frame))

    async def cut(self) -> None:
        """Close every open connection, as a network failure would (close code 1006 is not ours to send)."""
        for route in self._open:
            await route.close(code=1012, reason="cut by the test")
        self._open.clear()

    async def attach(self, context: BrowserContext) -> None:
        await context.route_web_socket("**/ws", self.handle)

    async def handle(self, route: WebSocketRoute) -> None:
        if self.refusing:
            await route.close(code=1013, reason="refused by the test")
            return
        server = route.connect_to_server()
        self._open.append(route)

        def to_server(message: str | bytes) -> None:
            self.sent.append(json.loads(message))
            server.send(message)

        def to_page(message: str | bytes) -> None:
            frame = json.loads(message)
            for index, (predicate, dropped) in enumerate(self._drops):
                if predicate(frame):
                    del self._drops[index]
                    dropped.set()
                    return
            route.send(message)

        route.on_message(to_server)
        server.on_message(to_page)


@dataclass
class Person:
    name: str
    id: str
    page: Page
    context: BrowserContext
    errors: list[str] = field(default_factory=list)


class People:
    def __init__(self, browser: Browser, url: str) -> None:
        self.browser, self.url = browser, url
        self.opened: list[Person] = []

    async def open(
        self,
        name: str,
        phone: bool = False,
        prepare: Prepare | None = None,
        url: str | None = None,
        timezone_id: str | None = None,
    ) -> Person:
        """A browser context at the client's sign-in page (of the session's stack, or ``url``), for a
        user not signed in yet; ``prepare(context)`` runs first (routes, say); ``timezone_id``: the
        browser's time zone (else the machine's)."""
        zone = {"timezone_id": timezone_id} if timezone_id else {}
        context = await self.browser.new_context(**(PHONE if phone else DESKTOP), locale="en-GB", **zone)
        if prepare is not None:
            await prepare(context)
        page = await context.new_page()
        person = Person(name, f"{name.lower()}-{uuid.uuid4().hex[:10]}", page, context)
        page.on("pageerror", lambda error: person.errors.append(str(error)))
        self.opened.append(person)
        await page.goto(f"{url or self.url}/")
        return person

    async def sign_in(
        self, name: str, phone: bool = False, prepare: Prepare | None = None, timezone_id: str | None = None
    ) -> Person:
        person = await self.open(name, phone, prepare, timezone_id=timezone_id)
        await sign_in(person)
        return person


async def sign_in(person: Person) -> None:
    page = person.page
    await page.get_by_label("Your name").fill(person.name)
    await page.get_by_label("Sign-in id").fill(person.id)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#me")).to_contain_text(person.name)
