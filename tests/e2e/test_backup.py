"""``boochat backup`` of a running ``boochat up`` and ``boochat restore`` into an empty data folder
and namespace: rooms, messages, meetup, sessions and the event log come back, ``seq`` goes on, and a
replay over the restored log rebuilds the same read models."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from support.client import Client

from e2e import test_data_folder
from e2e.test_data_folder import boochat, check_kept, fill

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# Its fixtures: a data folder, the environment of a ``boochat up`` on it, and ``run_up`` to start one.
data_dir = test_data_folder.data_dir
up_env = test_data_folder.up_env
run_up = test_data_folder.run_up


async def log_entries(amqp_url: str, log: str) -> list[tuple[str | None, str | None, bytes]]:
    """(message id, routing key, body) of every entry of the stream ``log``, oldest first: read from
    its first offset up to a sentinel this puts at its end."""
    sentinel = "sentinel-" + log
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(aio_pika.Message(b"", message_id=sentinel), routing_key=log)
        await channel.set_qos(prefetch_count=500)
        queue = await channel.declare_queue(log, passive=True)
        entries = []
        async with queue.iterator(arguments={"x-stream-offset": "first"}, timeout=30) as messages:
            async for message in messages:
                await message.ack()
                if message.message_id == sentinel:
                    break
                entries.append((message.message_id, message.routing_key, message.body))
        return [entry for entry in entries if not (entry[0] or "").startswith("sentinel-")]


async def test_a_backup_taken_while_running_restores_everything(
    run_up: Any, up_env: dict[str, str], data_dir: Path, tmp_path: Path, namespace: str, amqp_url: str
) -> None:
    first = await run_up(BOOCHAT_DEV_LOGIN="true")
    before = await fill(first.ws_url)
    copy = tmp_path / "backup"

    backed_up = boochat(up_env, "backup", str(copy))
    assert backed_up.returncode == 0, backed_up.stderr
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["namespace"] == namespace and manifest["session_secret"] is True
    assert manifest["not_covered"] == []
    documents = {d["name"]: d["collections"] for d in manifest["databases"]}
    assert documents[f"{namespace}_meetups"]["meetups"] == 1
    assert documents[f"{namespace}_rooms"]["rooms"] == 2  # Friday and the meetup's room
    assert stat.S_IMODE((copy / "session-secret").stat().st_mode) == 0o600
    assert (copy / "session-secret").read_text() == (data_dir / "session-secret").read_text()
    assert f"backed up {namespace} to {copy}" in backed_up.stdout

    original = await log_entries(amqp_url, f"{namespace}.events.log")
    marker = manifest["log"]["marker"]
    copied = original[: [entry[0] for entry in original].index(marker)]  # what came before the backup's marker
    assert len(copied) == manifest["log"]["entries"] and copied

    await first.terminate()
    shutil.rmtree(data_dir)
    dropped = boochat(up_env, "drop", namespace)
    assert dropped.returncode == 0, dropped.stderr

    restored = boochat(up_env, "restore", str(copy))
    assert restored.returncode == 0, restored.stderr
    assert await log_entries(amqp_url, f"{namespace}.events.log") == copied  # ids, types and bodies, in order
    assert stat.S_IMODE((data_dir / "session-secret").stat().st_mode) == 0o600

    again = boochat(up_env, "restore", str(copy))  # the namespace holds data now
    assert again.returncode == 1
    [line] = [json.loads(text) for text in again.stderr.splitlines()]
    assert "is in use" in line["reason"] and "boochat drop" in line["reason"], line

    second = await run_up(BOOCHAT_DEV_LOGIN="true")
    await check_kept(second.ws_url, before)  # the token signs in (the secret is back), seq goes on

    replayed = boochat(up_env, "replay", "meetups")  # the meetups' read model rebuilt from the restored log
    assert replayed.returncode == 0, replayed.stderr
    events = sum(1 for _, key, _ in copied if key != "replay.requested")
    assert "caught up" in replayed.stdout
    async with await Client.connect(second.ws_url, token=before["token"]) as ann:
        [meetup] = (await ann.ok("list_meetups"))["meetups"]
        assert (meetup["id"], meetup["name"], meetup["location"]) == (before["meetup"]["id"], "Pizza", "Luigi's")
    dry = boochat(up_env, "replay", "rooms", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    read = int(dry.stdout.split("would read ")[1].split()[0])
    assert read >= events  # the restored events, and those of the restarted stack


async def test_restore_refuses_a_folder_with_data(up_env: dict[str, str], data_dir: Path, tmp_path: Path) -> None:
    """A data folder holding anything of a stack is refused with one line, and left as it was."""
    copy = tmp_path / "backup"
    copy.mkdir()
    (copy / "manifest.json").write_text(
        json.dumps(
            {
                "boochat": "0",
                "created_at": "2026-01-01T00:00:00Z",
                "namespace": up_env["BOOCHAT_NAMESPACE"],
                "databases": [],
                "log": {"entries": 0, "first_offset": None, "last_offset": None, "marker": "m"},
                "session_secret": False,
                "not_covered": [],
            }
        )
    )
    (copy / "events.jsonl").write_text("")
    data_dir.mkdir()  # noqa: ASYNC240  (setting up, before anything runs)
    (data_dir / "session-secret").write_text("x" * 40)
    refused = boochat(up_env, "restore", str(copy))
    assert refused.returncode == 1
    [line] = [json.loads(text) for text in refused.stderr.splitlines()]
    assert "is not empty (session-secret)" in line["reason"] and str(data_dir) in line["reason"], line
    assert sorted(p.name for p in data_dir.iterdir()) == ["boochat.lock", "run", "session-secret"]  # noqa: ASYNC240
