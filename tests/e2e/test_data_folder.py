"""``boochat up`` as users run it, on a data folder: what was acknowledged outlives a stop (SIGTERM)
and a crash (SIGKILL of the whole process group, the Mongo stand-in included); a second ``up`` on
the folder refuses; the other commands find the running stack through the folder; dev login is
off unless asked for."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.client import Client
from support.stack import free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

BOOCHAT = (sys.executable, "-m", "boochat.cli")
READY_TIMEOUT = 120.0  # a cold start of every process on two busy cores
STOP_TIMEOUT = 60.0


class Up:
    """One ``boochat up`` on ``data_dir``, in a process group of its own (the stand-in, the gateway
    and the workers are in it too), its stderr in ``log``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.env['BOOCHAT_GATEWAY_PORT']}/ws"

    async def start(self) -> Up:
        with self.log.open("ab") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                *BOOCHAT, "up", env=self.env, stdout=asyncio.subprocess.PIPE, stderr=stderr, start_new_session=True
            )
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), READY_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"boochat up not ready in {READY_TIMEOUT} s:\n{self.tail()}") from None
        assert line.decode() == f"Boochat is ready: {self.ws_url}\n", self.tail()
        return self

    async def terminate(self) -> None:
        """SIGTERM, as Ctrl-C or an init system stops it: exit 0, nothing of the group left."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
        assert returncode == 0, self.tail()
        await wait_group_gone(self.process.pid)

    async def kill(self) -> None:
        """SIGKILL of every process of the group at once: nobody gets to finish anything."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        await wait_group_gone(self.process.pid)

    async def stop_if_running(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()
        if self.process is not None:
            await wait_group_gone(self.process.pid)

    def problems(self) -> list[str]:
        """Its log's warnings and errors, for a failing test's report."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return [line[:2000] for line in lines if '"level": "info"' not in line and '"level": "debug"' not in line]

    def tail(self, limit: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-limit:] if self.log.exists() else ""


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:  # state, ppid, pgrp
            members.append(int(entry.name))
    return members


async def wait_group_gone(pgid: int, timeout: float = STOP_TIMEOUT) -> None:
    """Until no process of the group runs (after SIGKILL, the last ones are still dying)."""
    async with asyncio.timeout(timeout):
        while True:
            if not group_members(pgid):
                return
            await asyncio.sleep(0.05)  # polling interval: the deaths of processes not ours have no event


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def up_env(namespace: str, amqp_url: str, data_dir: Path) -> dict[str, str]:
    """``boochat up``'s environment: this test's namespace (dropped after it) and data folder, and
    none of the developer's BOOCHAT_* variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BOOCHAT_")}
    return {
        **env,
        "BOOCHAT_NAMESPACE": namespace,
        "BOOCHAT_AMQP_URL": amqp_url,
        "BOOCHAT_DATA_DIR": str(data_dir),
        "BOOCHAT_GATEWAY_PORT": str(free_ports(1)),
        "BOOCHAT_METRICS_PORT": "0",
    }


@pytest.fixture
async def run_up(up_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Any]:
    """``await run_up(**extra_env)``: a started ``boochat up``; every one is stopped after the test."""
    started: list[Up] = []

    async def run(**extra: str) -> Up:
        up = Up({**up_env, **extra}, tmp_path / f"up-{len(started) + 1}.log")
        started.append(up)
        return await up.start()

    yield run
    for up in reversed(started):
        await up.stop_if_running()
        print(f"--- problems logged by {up.log.name}:", *up.problems(), sep="\n")  # shown if the test failed


def boochat(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BOOCHAT, *args], env=env, capture_output=True, text=True, timeout=60)


async def fill(url: str) -> dict[str, Any]:
    """Sign in, make a room with messages and a meetup; what was acknowledged, and the session token."""
    ann = await Client.connect(url, dev_user={"id": "ann", "name": "Ann"})
    bob = await Client.connect(url, dev_user={"id": "bob", "name": "Bob"})
    try:
        room = (await ann.ok("create_room", {"name": "Friday", "participant_ids": ["bob"]}))["room"]
        sent = [
            (await ann.ok("send_message", {"room_id": room["id"], "content": f"message {n}"}))["item"] for n in range(5)
        ]
        when = (datetime.now(UTC) + timedelta(days=7)).isoformat().replace("+00:00", "Z")
        meetup = (
            await ann.ok(
                "create_meetup",
                {"name": "Pizza", "location": "Luigi's", "takes_place_on": when, "attendee_ids": ["bob"]},
            )
        )["meetup"]
        return {"token": ann.token, "room": room, "sent": sent, "meetup": meetup}
    finally:
        await ann.close()
        await bob.close()


async def check_kept(url: str, before: dict[str, Any]) -> None:
    """The session token still signs in; every acknowledged item, the room and the meetup are there;
    ``seq`` goes on from the last one."""
    async with await Client.connect(url, token=before["token"]) as ann:
        assert (await ann.ok("get_me"))["user"]["id"] == "ann"
        room_id = before["room"]["id"]
        rooms = {summary["room"]["id"]: summary["room"] for summary in (await ann.ok("list_rooms"))["rooms"]}
        assert rooms[room_id]["name"] == "Friday" and set(rooms[room_id]["participant_ids"]) == {"ann", "bob"}
        items = (await ann.ok("get_room_items", {"room_id": room_id, "limit": 100}))["items"]
        by_seq = {item["seq"]: item for item in items}
        for item in before["sent"]:
            assert by_seq[item["seq"]]["id"] == item["id"] and by_seq[item["seq"]]["content"] == item["content"]
        last = max(by_seq)
        assert sorted(by_seq) == list(range(1, last + 1))  # gap-free
        meetup = (await ann.ok("get_meetup", {"meetup_id": before["meetup"]["id"]}))["meetup"]
        assert (meetup["name"], meetup["location"], meetup["room_id"]) == (
            "Pizza",
            "Luigi's",
            before["meetup"]["room_id"],
        )
        after = (await ann.ok("send_message", {"room_id": room_id, "content": "after the restart"}))["item"]
        assert after["seq"] == last + 1


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
async def test_what_was_acknowledged_outlives_a_restart(run_up: Any, data_dir: Path, stop: str) -> None:
    """Stopped with SIGTERM, or its whole process group killed with SIGKILL, then started again on
    the same folder: messages, room, meetup and session token are all there, and ``seq`` goes on."""
    first = await run_up(BOOCHAT_DEV_LOGIN="true")
    before = await fill(first.ws_url)
    await (first.terminate() if stop == "sigterm" else first.kill())
    second = await run_up(BOOCHAT_DEV_LOGIN="true")
    await check_kept(second.ws_url, before)


async def test_a_fresh_folder_is_safe_by_default(run_up: Any, up_env: dict[str, str], data_dir: Path) -> None:
    """Without BOOCHAT_DEV_LOGIN, dev sign-in is refused as PROTOCOL.md says (unauthenticated, 4401);
    the session secret was made private; the folder is locked; ``boochat token`` and ``boochat
    replay`` run with the same folder find the secret and the database."""
    up = await run_up()
    secret = data_dir / "session-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text().strip()) >= 32

    async with await Client.connect(up.ws_url) as client:
        error = await client.error("authenticate", {"dev_user": {"id": "eve", "name": "Eve"}})
        assert error["code"] == "unauthenticated"
        assert await client.wait_closed() == 4401

    token = boochat(up_env, "token", "carol", "--name", "Carol")
    assert token.returncode == 0, token.stderr
    async with await Client.connect(up.ws_url, token=token.stdout.strip()) as carol:
        assert (await carol.ok("get_me"))["user"]["name"] == "Carol"

    replay = boochat(up_env, "replay", "rooms", "--dry-run")
    assert replay.returncode == 0, replay.stderr
    assert "dry run: would read" in replay.stdout

    second = boochat(up_env, "up")
    assert second.returncode == 1 and second.stdout == ""
    [line] = [json.loads(text) for text in second.stderr.splitlines()]
    assert line["event"] == "stopped" and "is in use by another boochat up" in line["reason"], line
    assert str(data_dir) in line["reason"]
