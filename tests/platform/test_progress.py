"""boochat.progress: a bar with the total and the time left on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import os
import pty

import pytest

from boochat import progress
from boochat.progress import Console


def test_plain_lines_say_how_far_how_fast_and_how_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "EVERY", 0.0)  # a line on every advance
    out = io.StringIO()
    console = Console(out)
    assert not console.terminal
    with console.counting("rebuilding", 200) as advance:
        advance(50)
        advance(50)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("rebuilding: 50/200 events (25%), ") and lines[0].endswith(" s left")
    assert lines[1].startswith("rebuilding: 100/200 events (50%), ")
    assert lines[-1].startswith("rebuilding: 100 events in ")


def test_plain_lines_without_a_total_count_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "EVERY", 0.0)
    out = io.StringIO()
    with Console(out).counting("catching up", None) as advance:
        advance(3)
    assert out.getvalue().splitlines()[0].startswith("catching up: 3 events, ")


def test_a_terminal_gets_a_bar_with_the_total() -> None:
    main, side = pty.openpty()
    with os.fdopen(side, "w") as terminal:
        console = Console(terminal)
        assert console.terminal
        with console.counting("rebuilding", 40) as advance:
            advance(40)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the other side is closed and everything was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert b"rebuilding" in shown and b"40/40" in shown
