"""The test process imports the project's real packages, not tests/ folders of the same name."""

from __future__ import annotations

from pathlib import Path

import contracts
import gateway
import workers
from boochat.supervisor import available_workers

ROOT = Path(__file__).resolve().parents[2]


def test_project_packages_are_the_real_ones() -> None:
    for package in (contracts, gateway, workers):
        assert package.__file__ is not None and Path(package.__file__).parent.parent == ROOT, package
    assert "rooms" in available_workers()
