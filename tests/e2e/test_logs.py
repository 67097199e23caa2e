"""Every line every process of a stack writes is one JSON object, also while things go wrong (a
worker killed, bad frames, a refused Google token, the broker closing connections), and no message
text or token reaches a log at info."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import uuid

import pytest
from support.broker import wait_until_idle
from support.client import Client, RequestError
from support.google import FakeGoogle
from support.stack import Stack

from boochat.supervisor import wait_stack_ready
from e2e.helpers import make_room, new_user

pytestmark = pytest.mark.e2e

RECOVERY = 60.0  # seconds for reconnects, restarts and consumers to come back on the small broker


async def output(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, f"{argv}: {err.decode(errors='replace')}"
    return out.decode(errors="replace")


async def close_broker_connections(stack: Stack, names: list[str]) -> int:
    """Have RabbitMQ close the AMQP connections of these children (only theirs: the broker is shared),
    as a broker restart or a network cut would. Connections are matched by their client port."""
    pids = {stack.supervisor.pid(name) for name in names}
    sockets = await output("ss", "-tnpH", "dport = :5672")
    ports = {
        int(port)
        for port, pid in re.findall(r":(\d+)\s+\S+:5672\s+users:\(\(\"[^\"]*\",pid=(\d+),", sockets)
        if int(pid) in pids
    }
    listing = await output("rabbitmqctl", "-q", "list_connections", "pid", "peer_port", "--no-table-headers")
    connections = [pid for pid, port in (line.split() for line in listing.splitlines()) if int(port) in ports]
    for connection in connections:
        await output("rabbitmqctl", "-q", "close_connection", connection, "boochat test: broker fault")
    return len(connections)


async def answers_again(stack: Stack) -> None:
    """A fresh client can send a message again (bounded: the stack reconnects on its own)."""
    await wait_stack_ready(stack.supervisor, stack.settings, timeout=RECOVERY)
    async with asyncio.timeout(RECOVERY):
        while True:
            try:
                async with await Client.connect(stack.ws_url, dev_user=new_user("Dee")) as dee:
                    room = (await dee.ok("create_room", {"name": "After", "participant_ids": []}))["room"]
                    await dee.ok("send_message", {"room_id": room["id"], "content": "back"})
                    return
            except (RequestError, TimeoutError, OSError):
                await asyncio.sleep(0.5)  # retry interval while consumers come back


async def test_every_line_of_every_process_is_json_through_faults(start_stack) -> None:
    marker = uuid.uuid4().hex
    with FakeGoogle() as google:
        stack = await start_stack(google_client_id=google.client_id, google_certs_url=google.certs_url)
        async with await Client.connect(stack.ws_url, dev_user=new_user("Ann")) as ann:
            async with await Client.connect(stack.ws_url, dev_user=new_user("Bob")) as bob:
                await bob.ok("register_device", {"token": f"device-{marker}", "platform": "android"})
                room = await make_room(ann, bob)
            await wait_until_idle(stack.settings.namespace)  # the notifications worker knows Bob is offline
            # so it logs the push it would send (no FCM credentials).
            await ann.ok("send_message", {"room_id": room["id"], "content": f"secret plan {marker}"})
            await wait_until_idle(stack.settings.namespace)

            # google-auth's refusal of a malformed token quotes the token.
            async with await Client.connect(stack.ws_url) as stranger:
                refused = await stranger.error("authenticate", {"google_id_token": f"not-a-jwt-{marker}"})
                assert refused["code"] == "unauthenticated"

            async with await Client.connect(stack.ws_url, dev_user=new_user("Cid")) as cid:
                await cid.send_text(f"{{not json {marker}")
                await cid.sync()
                refused = await cid.error("send_message", {"room_id": room["id"], "content": marker, "extra": 1})
                assert refused["code"] == "bad_request"
                await cid.send_text("x" * (stack.settings.max_frame_bytes + 1))
                assert await cid.wait_closed() == 1009

            os.kill(stack.supervisor.pid("messaging-1"), signal.SIGKILL)
            await stack.supervisor.wait_started("messaging-1", 2, timeout=RECOVERY)

            assert await close_broker_connections(stack, ["gateway-1", "rooms-1"]) >= 2
            await answers_again(stack)
        await stack.stop()

    logs = {path.stem: path.read_text() for path in sorted(stack.log_dir.glob("*.log"))}
    assert set(logs) == {process.name for process in stack.processes}
    entries: dict[str, list[dict]] = {}
    for name, text in logs.items():
        for number, line in enumerate(text.splitlines(), 1):
            try:
                entry = json.loads(line)
            except ValueError:
                pytest.fail(f"{name}.log line {number} is not JSON: {line[:500]}")
            assert isinstance(entry, dict) and {"event", "level", "timestamp", "service"} <= entry.keys(), line
            entries.setdefault(name, []).append(entry)
        assert marker not in text, f"{name}.log holds message text or a token"

    gateway = entries["gateway-1"]
    assert any(e["event"] == "dev_login_on" and e["level"] == "warning" for e in gateway)
    [refusal] = [e for e in gateway if e["event"] == "google_token_refused"]
    assert "<token>" in refusal["reason"]
    # Bob's pushes: the message, and the room's announcement when it reached the worker after he left.
    pushes = [e for e in entries["notifications-1"] if e["event"].startswith("push not sent")]
    assert pushes and all(push["body"].endswith(" hidden>") for push in pushes)
    # The standard library's loggers went through the same JSON: aiormq's report of the closed
    # connection carries its traceback as a field.
    libraries = {e.get("logger", "").split(".")[0] for name in ("gateway-1", "rooms-1") for e in entries[name]}
    assert {"aio_pika", "aiormq", "websockets"} <= libraries, libraries
    assert any(
        e.get("exception", "").startswith("Traceback") for e in entries["rooms-1"] if e["logger"] == "aiormq.connection"
    )
