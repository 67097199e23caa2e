"""The Makefile's targets the README promises: make run needs nothing beforehand (it makes sure of
RabbitMQ as make test does, then runs boochat up); make lock refreshes both lock files.
Read with ``make -n`` (what would run), so nothing is started or installed here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def planned(target: str, **env: str) -> list[str]:
    """The commands ``make TARGET`` would run, last ones last."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("BOOCHAT_", "MAKE"))}
    result = subprocess.run(
        ["make", "-n", target], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def test_make_run_makes_sure_of_rabbitmq_then_runs_the_stack() -> None:
    commands = planned("run")
    assert commands[-2:] == ["deploy/ensure-rabbitmq.sh", ".venv/bin/boochat up"]
    assert "deploy/ensure-rabbitmq.sh" in planned("test")  # the same way as make test


def test_make_run_leaves_another_broker_alone() -> None:
    commands = planned("run", BOOCHAT_AMQP_URL="amqp://app:secret@rabbitmq.example:5672/")
    assert commands[-1] == ".venv/bin/boochat up" and "deploy/ensure-rabbitmq.sh" not in commands


def test_make_lock_compiles_both_lock_files_from_pyproject() -> None:
    commands = [line for line in planned("lock") if "uv pip compile" in line]
    assert len(commands) == 2 and all("pyproject.toml" in line and "--generate-hashes" in line for line in commands)
    assert "-o requirements/base.txt" in commands[0] and "--extra" not in commands[0]
    assert "--extra dev --extra local -c requirements/base.txt -o requirements/dev.txt" in commands[1]
