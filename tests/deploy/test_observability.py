"""Every process of the running stack serves health and metrics on its own metrics port."""

from __future__ import annotations

import importlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from importlib.metadata import version

import pytest
from support.client import Client
from support.ops_http import get, sample
from support.stack import Stack

from boochat.supervisor import http_status

pytestmark = pytest.mark.e2e


async def test_every_child_has_its_own_ready_metrics_port(stack: Stack) -> None:
    urls = [process.metrics_url for process in stack.processes]
    assert None not in urls and len(set(urls)) == len(urls)
    for process in stack.processes:
        base = process.metrics_url.removesuffix("/metrics")  # type: ignore[union-attr]
        assert await http_status(f"{base}/healthz") == 200, process.name
        assert await http_status(f"{base}/readyz") == 200, process.name
        assert await http_status(f"{base}/ws") == 404, process.name


async def test_gateway_counts_connections_frames_and_requests(stack: Stack) -> None:
    gateway = stack.gateways[0].metrics_url
    assert gateway is not None
    before = (await get(gateway))[1]
    user = {"id": f"m-{uuid.uuid4().hex[:8]}", "name": "Metered"}
    async with await Client.connect(stack.ws_url, dev_user=user) as client:
        await client.ok("get_me")
        await client.sync()  # a ping
        during = (await get(gateway))[1]
    assert sample(during, "boochat_gateway_connections") >= 1
    assert sample(during, "boochat_gateway_broker_ready") == 1
    for type_ in ("authenticate", "get_me", "ping"):
        counted = sample(during, "boochat_gateway_requests_total", type=type_, outcome="ok")
        assert counted == sample(before, "boochat_gateway_requests_total", type=type_, outcome="ok") + 1
    assert (
        sample(during, "boochat_gateway_frames_received_total")
        >= sample(before, "boochat_gateway_frames_received_total") + 3
    )
    assert sample(during, "boochat_gateway_send_wait_seconds_count", kind="reply") >= 3
    assert "boochat_gateway_slow_clients_dropped_total" in during


async def test_workers_count_the_messages_they_handle(stack: Stack) -> None:
    """FastStream's Prometheus middleware: signing in and get_me went through the users worker."""
    user = {"id": f"m-{uuid.uuid4().hex[:8]}", "name": "Metered"}
    async with await Client.connect(stack.ws_url, dev_user=user) as client:
        await client.ok("get_me")
    users = next(p for p in stack.processes if p.service == "users").metrics_url
    assert users is not None
    body = (await get(users))[1]
    commands = f"{stack.settings.names.commands}.users"
    assert sample(body, "faststream_received_messages_total", handler=commands, app_name="users") >= 2
    assert sample(body, "faststream_received_processed_messages_total", handler=commands, status="acked") >= 2


async def test_worker_publish_labels_do_not_name_rooms(stack: Stack) -> None:
    """Deliveries go to one routing key per room or user; their metrics (the outbox's, which publishes
    every event and delivery) are labelled by kind only."""
    user = {"id": f"m-{uuid.uuid4().hex[:8]}", "name": "Metered"}
    async with await Client.connect(stack.ws_url, dev_user=user) as client:
        room = (await client.ok("create_room", {"name": "metered", "participant_ids": []}))["room"]
        await client.ok("send_message", {"room_id": room["id"], "content": "hi"})
        when = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        meetup = {"name": "Metered", "location": "Here", "takes_place_on": when, "attendee_ids": []}
        await client.ok("create_meetup", meetup)
    for worker in ("messaging", "meetups"):  # messaging sends what members see of rooms and items
        url = next(p for p in stack.processes if p.service == worker).metrics_url
        assert url is not None
        body = (await get(url))[1]
        assert room["id"] not in body
        published = re.findall(r"boochat_published_messages_total\{([^}]*)\}", body)
        kinds = {
            labels.get("destination") for labels in map(label_map, published) if labels["exchange"] == "deliveries"
        }
        assert kinds and kinds <= {"room", "user", "everyone"}, (worker, published)


def label_map(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', text))


async def test_every_process_shows_its_cpu_memory_descriptors_and_build(stack: Stack) -> None:
    for process in stack.processes:
        body = (await get(process.metrics_url))[1]  # type: ignore[arg-type]
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"):
            assert sample(body, name) > 0, (process.name, name)
        assert sample(body, "boochat_build_info", version=version("boochat")) == 1, process.name


async def test_gateway_times_requests_by_type(stack: Stack) -> None:
    gateway = stack.gateways[0].metrics_url
    assert gateway is not None
    count = "boochat_gateway_request_duration_seconds_count"
    before = (await get(gateway))[1]
    user = {"id": f"m-{uuid.uuid4().hex[:8]}", "name": "Timed"}
    async with await Client.connect(stack.ws_url, dev_user=user) as client:
        await client.ok("get_me")
        await client.ok("list_rooms")
    after = (await get(gateway))[1]
    for type_ in ("authenticate", "get_me", "list_rooms"):
        assert sample(after, count, type=type_) == sample(before, count, type=type_) + 1, type_
    total = "boochat_gateway_request_duration_seconds_sum"
    assert sample(after, total, type="get_me") > sample(before, total, type="get_me")
    assert sample(after, "boochat_gateway_request_duration_seconds_bucket", type="get_me", le="+Inf") == sample(
        after, count, type="get_me"
    )


async def test_workers_report_their_queues_from_the_broker(stack: Stack) -> None:
    """Each worker's /metrics: depth and consumers of its command queue and of every reaction and
    projection queue, as the broker counted them (the worker itself consumes each)."""
    names = stack.settings.names
    for process in stack.processes:
        if process.service == "gateway":
            continue
        worker = importlib.import_module(f"workers.{process.service}.app").WORKER
        queues = [names.command_queue(worker.name), *(names.reaction_queue(worker.name, n) for n in worker.interests())]
        body = (await get(process.metrics_url))[1]  # type: ignore[arg-type]
        for queue in queues:
            assert f'boochat_queue_messages{{queue="{queue}"}}' in body, (process.name, queue)
            assert sample(body, "boochat_queue_consumers", queue=queue) >= 1, (process.name, queue)
        reported = set(re.findall(r'boochat_queue_consumers\{queue="([^"]+)"\}', body))
        assert reported == set(queues), process.name
