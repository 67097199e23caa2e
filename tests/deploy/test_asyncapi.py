"""docs/asyncapi: every worker's committed AsyncAPI document is the one its code generates."""

from __future__ import annotations

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
