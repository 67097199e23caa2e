"""deploy/ensure-rabbitmq.sh: idempotent, and quick when the broker already runs.

It is not stopped here (tests never restart the shared broker); stopping it and running the
script was checked by hand.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "ensure-rabbitmq.sh"


def test_running_twice_is_harmless_and_quick() -> None:
    """Both runs succeed; the second, with the node up, changes nothing and takes seconds."""
    first = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    started = time.monotonic()
    second = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    assert "starting" not in second.stderr and "installing" not in second.stderr
    assert "RabbitMQ is up on 127.0.0.1:5672" in second.stderr
    assert elapsed < 15, f"second run took {elapsed:.1f} s"
