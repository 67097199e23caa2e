"""docs/asyncapi: every worker's committed AsyncAPI document is the one its code generates."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

from boochat.supervisor import available_workers
from contracts.routing import Names

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"


def test_committed_documents_are_up_to_date() -> None:
    """Regenerated in a fresh process (building apps configures logging): ``make docs`` fixes a failure."""
    result = subprocess.run(
        [sys.executable, str(DOCS / "generate.py"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_worker_documents_its_command_queue() -> None:
    names = Names("boochat")
    for worker in available_workers():
        document = json.loads((DOCS / f"{worker}.json").read_text())
        assert document["asyncapi"].startswith("3.")
        addresses = {channel["address"] for channel in document["channels"].values()}
        assert names.command_queue(worker) in addresses, worker


def test_each_command_and_event_type_is_a_message_of_its_own() -> None:
    """Every type a worker's command queue takes, and every event type each of its event queues takes,
    is a message of that queue's channel, with its own payload schema (its ``type`` a constant)."""
    names = Names("boochat")
    for worker in available_workers():
        tables = importlib.import_module(f"workers.{worker}.app").WORKER
        document = json.loads((DOCS / f"{worker}.json").read_text())
        wanted = {names.command_queue(worker): set(tables.commands)}
        for name, table in (tables.reactions | tables.projections).items():
            wanted[names.reaction_queue(worker, name)] = set(table.payloads)
        found = {channel["address"]: channel["messages"] for channel in document["channels"].values()}
        assert {address: set(found[address]) for address in wanted} == wanted, worker
        for messages in (found[address] for address in wanted):
            for type, reference in messages.items():
                message = document["components"]["messages"][reference["$ref"].rsplit("/", 1)[1]]
                payload = document["components"]["schemas"][message["payload"]["$ref"].rsplit("/", 1)[1]]
                assert payload["properties"]["type"]["const"] == type, (worker, type)
