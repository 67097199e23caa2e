"""Matrix Synapse from PyPI: one process, SQLite, presence and rate limits off, open registration for
the bench users, client-server API only (no federation listener, no key servers).

Members send with ``PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}`` and receive by
long-polling ``/sync`` with a filter that keeps only the timeline's messages (a real client's
steady state after its first sync). A sync that comes back ``limited`` skipped events (Synapse
trims a timeline to the filter's limit): those are not fetched, they count as lost, and the number
of such syncs is reported.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from asyncio.subprocess import Process
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench.load import MemberSpec, Profile
from bench.peers import start_server, stop_server, venvs, wait_until_answers
from boochat.mongo import free_port

REQUIREMENTS = ["matrix-synapse==1.163.2"]
SERVER_NAME = "bench.localhost"
UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}
RATE_LIMITS = [
    "rc_message", "rc_registration", "rc_registration_token_validity", "rc_admin_redaction",
    "rc_joins_per_room", "rc_key_requests", "rc_3pid_validation", "rc_third_party_invite", "rc_media_create",
    "rc_delayed_event_mgmt", "rc_room_creation", "rc_reports", "rc_user_directory", "rc_profile",
]  # fmt: skip
NESTED_RATE_LIMITS = {
    "rc_login": ["address", "account", "failed_attempts"],
    "rc_joins": ["local", "remote"],
    "rc_invites": ["per_room", "per_user", "per_issuer"],
    "rc_presence": ["per_user"],
}
SYNC_TIMEOUT_MS = 5_000  # long-poll length: short enough to notice the end of a run quickly
TIMELINE_LIMIT = 1_000
SYNC_FILTER = json.dumps(
    {
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
        "room": {
            "timeline": {"limit": TIMELINE_LIMIT, "types": ["m.room.message"]},
            "state": {"types": []},
            "ephemeral": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
        },
    }
)
HTTP_TIMEOUT = 60.0  # one HTTP request, at most (a sync lasts SYNC_TIMEOUT_MS plus Synapse's delay)


def config(folder: Path, port: int) -> dict[str, Any]:
    """What the bench changes in the generated homeserver.yaml (a second config file overrides it)."""
    overrides: dict[str, Any] = {
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(folder / "homeserver.db")}},
        "presence": {"enabled": False},
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "report_stats": False,
        "url_preview_enabled": False,
    }
    overrides.update({key: UNLIMITED for key in RATE_LIMITS})
    overrides.update({key: {part: UNLIMITED for part in parts} for key, parts in NESTED_RATE_LIMITS.items()})
    return overrides


class Peer:
    name = "synapse"
    client = "bench.peers.synapse"

    def __init__(self) -> None:
        self._process: Process | None = None
        self._port = 0
        self._folder: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        python = await venvs.ensure(self.name, REQUIREMENTS)
        self._folder = folder = Path(tempfile.mkdtemp(prefix="bench-synapse-"))
        self._port = free_port()
        generated = folder / "homeserver.yaml"
        process = await asyncio.create_subprocess_exec(
            str(python), "-m", "synapse.app.homeserver", "--server-name", SERVER_NAME,
            "--config-path", str(generated), "--data-directory", str(folder),
            "--generate-config", "--report-stats=no", cwd=folder, stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        if await asyncio.wait_for(process.wait(), 120) != 0:
            raise RuntimeError("synapse --generate-config failed")
        bench = folder / "bench.yaml"
        bench.write_text(json.dumps(config(folder, self._port), indent=2))  # JSON is YAML
        argv = [str(python), "-m", "synapse.app.homeserver", "-c", str(generated), "-c", str(bench)]
        self._process = await start_server(argv, folder / "stdout.log", cwd=folder)
        await wait_until_answers(f"{self.url}/_matrix/client/versions", self._process, folder / "homeserver.log")

    async def prepare(self, run: str, profile: Profile) -> list[MemberSpec]:
        specs = []
        async with httpx.AsyncClient(base_url=self.url, timeout=HTTP_TIMEOUT) as http:
            users = [f"{run}-{profile.slug}-{index}".lower() for index in range(profile.rooms * profile.members)]
            tokens = await asyncio.gather(*(_register(http, user) for user in users))
            for room in range(profile.rooms):
                first = room * profile.members
                created = await _call(
                    http, "POST", "/_matrix/client/v3/createRoom", tokens[first],
                    {"preset": "public_chat", "name": f"Bench {room}"},
                )  # fmt: skip
                room_id = created["room_id"]
                for index in range(first + 1, first + profile.members):
                    await _call(http, "POST", f"/_matrix/client/v3/join/{quote(room_id)}", tokens[index], {})
                for index in range(first, first + profile.members):
                    specs.append(MemberSpec(index, room, {"url": self.url, "token": tokens[index], "room_id": room_id}))
        return specs

    def processes(self) -> dict[str, tuple[int | None, str]]:
        return {"synapse": (self._process.pid if self._process else None, "server")}

    async def stop(self) -> None:
        await stop_server(self._process)


async def _register(http: httpx.AsyncClient, user: str) -> str:
    body = {"username": user, "password": f"pw-{uuid.uuid4().hex}", "auth": {"type": "m.login.dummy"}}
    return (await _call(http, "POST", "/_matrix/client/v3/register", None, body))["access_token"]


async def _call(http: httpx.AsyncClient, method: str, path: str, token: str | None, body: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.request(method, path, json=body, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response.json()


class _Member:
    def __init__(self, connect_to: dict[str, Any], deliver: Callable[[str], None]) -> None:
        headers = {"Authorization": f"Bearer {connect_to['token']}"}
        self._room = quote(connect_to["room_id"])
        # One client to send, one for the long poll, as a real client's connections would be.
        self._sender = httpx.AsyncClient(base_url=connect_to["url"], headers=headers, timeout=HTTP_TIMEOUT)
        self._syncer = httpx.AsyncClient(base_url=connect_to["url"], headers=headers, timeout=HTTP_TIMEOUT)
        self._deliver = deliver
        self._since: str | None = None
        self.gaps = 0  # syncs that came back limited: events skipped
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # The first sync marks where this member starts; what came before is not part of the run.
        await self._sync(timeout_ms=0)
        self._poller = asyncio.create_task(self._poll())

    async def send(self, content: str) -> str:
        path = f"/_matrix/client/v3/rooms/{self._room}/send/m.room.message/{uuid.uuid4().hex}"
        try:
            response = await self._sender.put(path, json={"msgtype": "m.text", "body": content})
        except httpx.HTTPError as error:
            return type(error).__name__
        return "ok" if response.status_code == 200 else f"http {response.status_code}"

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        await self._sender.aclose()
        await self._syncer.aclose()

    async def _poll(self) -> None:
        while True:  # ends when close() cancels it; each sync is bounded by HTTP_TIMEOUT
            try:
                await self._sync(timeout_ms=SYNC_TIMEOUT_MS)
            except httpx.HTTPError:
                await asyncio.sleep(0.5)  # back off before asking again, as a client would

    async def _sync(self, timeout_ms: int) -> None:
        params = {"timeout": str(timeout_ms), "filter": SYNC_FILTER}
        if self._since is not None:
            params["since"] = self._since
        response = await self._syncer.get("/_matrix/client/v3/sync", params=params)
        response.raise_for_status()
        body = response.json()
        first = self._since is None
        self._since = body["next_batch"]
        if first:
            return
        for room in body.get("rooms", {}).get("join", {}).values():
            timeline = room.get("timeline", {})
            self.gaps += bool(timeline.get("limited"))
            for event in timeline.get("events", []):
                if event.get("type") == "m.room.message":
                    self._deliver(event.get("content", {}).get("body", ""))


class _Client:
    async def open(self, connect_to: dict[str, Any], deliver: Callable[[str], None]) -> _Member:
        member = _Member(connect_to, deliver)
        await member.start()
        return member


CLIENT = _Client()
