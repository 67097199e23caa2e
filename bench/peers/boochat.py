"""Boochat: ``boochat up`` as users run it (one process, or ``--split``: a process per worker and for
the gateway under a supervisor), in a namespace of its own, on a Mongo stand-in of its own (its
databases on disk in the peer's data folder, as ``boochat up`` keeps them; started here so both
modes run on the same one); the namespace is dropped when the peer stops.

Settings are the defaults but for what a benchmark needs: dev sign-in for the bench users, no
per-user rate limit (Synapse runs without its limits too), no limit of handshakes per address
(every member connects from 127.0.0.1), no hourly limit of people added to rooms (the fanout
profile's room has 1,000 members), and room for the footprint profile's 2,000 members
connecting at once. Members sign in with the session token
their user got when the peer made it, so connecting announces nobody.

The crowd profiles (``bench.crowd``: storm, idle) run it ``paced``: with the default limit of
connections signing in, as users run it, since their clients come back after a 503's Retry-After.
Their users are made by their first sign-in, with session tokens the peer signs itself
(PROTOCOL.md, Authentication: a valid token of a user not known yet makes the user).

``boochat-scaled`` and ``boochat-gw2`` run ``boochat up --scale``: two gateways (members are spread
over them in turn) and, for the first, two messaging workers.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from bench.crowd import Crowd, PacedError, RefusedError, retry_after
from bench.load import MemberSpec, Profile
from bench.measure import pid_listening
from boochat import mongo
from boochat.settings import Settings
from boochat.supervisor import child_env
from boochat.topology import drop_namespace
from gateway.auth import issue_token

START_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
REPLY_TIMEOUT = 60.0  # setup requests only; the load's replies are bounded by the profile's drain
SETUP_CONCURRENCY = 20  # sign-ins and rooms made at once (the footprint profile makes 2,000 users)


class Peer:
    name = "boochat"
    client = "bench.peers.boochat"
    options: tuple[str, ...] = ()  # of ``boochat up``
    gateways = 1  # as many as ``options`` make: one ready line each

    def __init__(self, paced: bool = False) -> None:
        self._paced = paced  # the default limit of connections signing in (see the module's doc)
        self.urls: list[str] = []
        self._stand_in: mongo.StandIn | None = None
        self._up: asyncio.subprocess.Process | None = None
        self.settings: Settings | None = None
        self.log_dir: Path | None = None
        self._broker: int | None = None  # the RabbitMQ node's pid (shared with whatever else uses it)

    async def start(self) -> None:
        namespace = f"bench{uuid.uuid4().hex[:8]}"
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"bench-{namespace}-"))
        # Its databases on disk, in the data folder, as `boochat up` keeps them by default.
        self._stand_in = await mongo.start(databases=self.log_dir / "data" / "mongo")
        self.settings = Settings(
            namespace=namespace,
            mongo_url=self._stand_in.url,
            data_dir=str(self.log_dir / "data"),
            dev_login=True,
            jwt_secret=f"bench-{uuid.uuid4().hex}",
            rate_limit_per_minute=10**9,
            handshakes_per_minute_per_address=0,  # every member connects from 127.0.0.1
            max_invites_per_hour=10**6,  # the fanout profile's creator names 999 others
            gateway_port=_free_ports(self.gateways),
            metrics_port=0,
        )
        if not self._paced:  # the footprint profile's 2,000 members connect at once
            self.settings = self.settings.model_copy(update={"max_pending_connections": 5000})
        with (self.log_dir / "up.log").open("wb") as log:
            self._up = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "boochat.cli", "up", *self.options,
                env=child_env(self.settings), stdout=asyncio.subprocess.PIPE, stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        assert self._up.stdout is not None
        for _ in range(self.gateways):
            try:
                line = await asyncio.wait_for(self._up.stdout.readline(), START_TIMEOUT)
            except TimeoutError:
                raise RuntimeError(f"boochat up not ready in {START_TIMEOUT} s; see {self.log_dir}/up.log") from None
            if not line.startswith(READY):
                raise RuntimeError(f"boochat up ended ({self._up.returncode}); see {self.log_dir}/up.log")
            self.urls.append(line.removeprefix(READY).decode().strip().replace("://localhost:", "://127.0.0.1:"))
        self._broker = pid_listening(urlsplit(self.settings.amqp_url).port or 5672)

    @property
    def url(self) -> str:
        """The first gateway's: where users and rooms are made."""
        return self.urls[0]

    async def prepare(self, run: str, profile: Profile) -> list[MemberSpec]:
        users = [f"{run}-{profile.slug}-{index}" for index in range(profile.rooms * profile.members)]
        limit = asyncio.Semaphore(SETUP_CONCURRENCY)
        tokens = await asyncio.gather(*(_sign_in(self.url, user, limit) for user in users))

        async def make_room(room: int) -> tuple[str, int | None]:
            """The room's id and, for a mixed profile, its latest item's seq (what reactions go on
            until a member has seen a message: its announcement)."""
            members = users[room * profile.members : (room + 1) * profile.members]
            async with limit, _Setup(self.url, {"token": tokens[room * profile.members]}) as creator:
                data = {"name": f"Bench {room}", "participant_ids": members[1:]}
                room_id = str((await creator.request("create_room", data))["room"]["id"])
                if not profile.mixed:
                    return room_id, None
                items = (await creator.request("get_room_items", {"room_id": room_id, "limit": 1}))["items"]
            return room_id, (items[-1]["seq"] if items else None)

        rooms = await asyncio.gather(*(make_room(room) for room in range(profile.rooms)))
        specs = []
        for room, (room_id, seq) in enumerate(rooms):
            for offset in range(profile.members):
                index = room * profile.members + offset
                url = self.urls[index % len(self.urls)]  # members spread over the gateways in turn
                connect_to = {"url": url, "token": tokens[index], "room_id": room_id, "seq": seq}
                specs.append(MemberSpec(index, room, connect_to))
        return specs

    async def crowd(self, run: str, crowd: Crowd) -> list[dict[str, Any]]:
        """How each of ``crowd``'s users connects: a session token signed here (no sign-in needed
        to make it), users spread over the gateways in turn."""
        assert self.settings is not None
        users = [f"{run}-{crowd.slug}-{index}" for index in range(crowd.users)]
        return [
            {"url": self.urls[index % len(self.urls)], "token": issue_token(self.settings, user, user)[0]}
            for index, user in enumerate(users)
        ]

    def processes(self) -> dict[str, tuple[int | None, str]]:
        """``boochat up`` (in ``--split``, the supervisor) and each of its Boochat children by name
        (replicas of one service as ``gateway``, ``gateway #2``...)."""
        assert self._up is not None and self._stand_in is not None
        named: dict[str, tuple[int | None, str]] = {"boochat up": (self._up.pid, "server")}
        try:
            children = psutil.Process(self._up.pid).children()
        except psutil.Error:  # it has ended: its last samples stand
            children = []
        for child in sorted(children, key=lambda child: child.pid):  # the same label at every sample
            try:
                argv = child.cmdline()
            except psutil.Error:
                continue
            if "boochat.cli" in argv:  # gateway --supervised, worker NAME --supervised
                label = " ".join(argv[argv.index("boochat.cli") + 1 : -1])
                replica = 1
                while (label if replica == 1 else f"{label} #{replica}") in named:
                    replica += 1
                named[label if replica == 1 else f"{label} #{replica}"] = (child.pid, "server")
        named["mongo stand-in"] = (self._stand_in.process.pid, "database")
        named["rabbitmq (shared)"] = (self._broker, "broker (shared)")
        return named

    async def stop(self) -> None:
        try:
            if self._up is not None and self._up.returncode is None:
                self._up.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(self._up.wait(), STOP_TIMEOUT)
                except TimeoutError:
                    self._up.kill()  # in --split its children follow (their lifeline closes)
                    await self._up.wait()
            if self.settings is not None:
                # The broker only: the databases go with the stand-in (which a Ctrl-C may have ended).
                dropped = await drop_namespace(self.settings.model_copy(update={"mongo_url": None}))
                print(
                    f"dropped namespace {self.settings.namespace}: {len(dropped.queues)} queues, "
                    f"{len(dropped.exchanges)} exchanges"
                    + (f"; unread tables: {dropped.unread}" if dropped.unread else ""),
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            if self._stand_in is not None:
                await self._stand_in.stop()
            if self.log_dir is not None:
                shutil.rmtree(self.log_dir / "data", ignore_errors=True)


class SplitPeer(Peer):
    name = "boochat-split"
    options = ("--split",)


class ScaledPeer(Peer):
    name = "boochat-scaled"
    options = ("--scale=messaging=2,gateway=2",)
    gateways = 2


class TwoGatewaysPeer(Peer):
    name = "boochat-gw2"
    options = ("--scale=gateway=2",)
    gateways = 2


READY = b"Boochat is ready: "


def _free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports nobody listens on now (``boochat up --scale`` puts
    its gateways on consecutive ports)."""
    for _ in range(100):
        first = mongo.free_port()
        try:
            for port in range(first + 1, first + count):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} consecutive free ports")


async def _sign_in(url: str, user: str, limit: asyncio.Semaphore) -> str:
    async with limit, _Setup(url, {"dev_user": {"id": user, "name": user}}) as session:
        return session.token


class _Setup:
    """A connection for making users and rooms: requests one at a time, events ignored."""

    def __init__(self, url: str, credentials: dict[str, Any]) -> None:
        self._url = url
        self._credentials = credentials
        self.token = ""

    async def __aenter__(self) -> _Setup:
        self._ws = await connect(self._url, max_size=None)
        self.token = (await self.request("authenticate", self._credentials))["token"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()

    async def request(self, type: str, data: dict[str, Any]) -> dict[str, Any]:
        frame_id = uuid.uuid4().hex
        await self._ws.send(json.dumps({"type": type, "id": frame_id, "data": data}))
        async with asyncio.timeout(REPLY_TIMEOUT):
            while True:
                frame = json.loads(await self._ws.recv())
                if frame.get("re") == frame_id:
                    if frame["type"] != "ok":
                        raise RuntimeError(f"{type}: {frame}")
                    return frame["data"]


class _Member:
    def __init__(
        self, ws: ClientConnection, room_id: str, deliver: Callable[[str], None], seq: int | None = None
    ) -> None:
        self._ws = ws
        self._room_id = room_id
        self._deliver = deliver
        self._replies: dict[str, asyncio.Future[str]] = {}
        self._latest = seq  # the latest item of the room this member knows of: what it reacts to
        self._reader = asyncio.create_task(self._read())

    async def request(self, type: str, data: dict[str, Any]) -> str:
        frame_id = uuid.uuid4().hex
        self._replies[frame_id] = asyncio.get_running_loop().create_future()
        await self._ws.send(json.dumps({"type": type, "id": frame_id, "data": data}))
        return await self._replies[frame_id]

    async def send(self, content: str) -> str:
        return await self.request("send_message", {"room_id": self._room_id, "content": content})

    async def react(self, emoji: str) -> str:
        if self._latest is None:
            return "no item yet"
        return await self.request("add_reaction", {"room_id": self._room_id, "seq": self._latest, "emoji": emoji})

    async def typing(self) -> str:
        return await self.request("typing", {"room_id": self._room_id})

    async def close(self) -> None:
        await self._ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                frame = json.loads(raw)
                if frame["type"] == "event":
                    if frame["event"] == "room.item_added":
                        item = frame["data"]["item"]
                        self._latest = max(self._latest or 0, item["seq"])
                        self._deliver(item["content"])
                elif (future := self._replies.pop(frame.get("re") or "", None)) is not None:
                    future.set_result("ok" if frame["type"] == "ok" else frame["error"]["code"])
        finally:
            for future in self._replies.values():
                if not future.done():
                    future.set_result("closed")


class _Client:
    async def open(self, connect_to: dict[str, Any], deliver: Callable[[str], None]) -> _Member:
        ws = await connect(connect_to["url"], max_size=None)
        member = _Member(ws, connect_to["room_id"], deliver, connect_to.get("seq"))
        outcome = await asyncio.wait_for(member.request("authenticate", {"token": connect_to["token"]}), REPLY_TIMEOUT)
        if outcome != "ok":
            raise RuntimeError(f"authenticate: {outcome}")
        return member


CLIENT = _Client()


def _ignore(content: str) -> None:
    """A crowd's users receive what the server sends them (presence...) and keep none of it."""


class _Crowd:
    """One try of a crowd's user (``bench.crowd.arrive`` tries again): connect, sign in with the token."""

    async def open(self, connect_to: dict[str, Any]) -> _Member:
        try:
            ws = await connect(connect_to["url"], max_size=None)
        except InvalidStatus as error:
            if error.response.status_code == 503:
                raise PacedError(retry_after(error.response.headers.get("Retry-After"))) from None
            raise
        member = _Member(ws, "", _ignore)
        try:
            outcome = await member.request("authenticate", {"token": connect_to["token"]})
        except BaseException:  # cancelled at the deadline, or the connection broke: leave nothing open
            await member.close()
            raise
        if outcome != "ok":
            await member.close()
            raise RefusedError(outcome)
        return member


CROWD = _Crowd()
