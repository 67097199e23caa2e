"""Progress of a long command (``boochat replay``): a bar with the total and the time left on a
terminal, plain lines anywhere else (a log, a pipe), at most one a second, with the same figures."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console as RichConsole
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

EVERY = 1.0  # seconds between plain progress lines


class Console:
    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self.terminal = self._out.isatty()

    def say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    @contextmanager
    def counting(self, what: str, total: int | None, unit: str = "events") -> Iterator[Callable[[int], None]]:
        """Yields ``advance(n)``: ``n`` more of ``total`` (None: not known) are done."""
        if self.terminal:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            with Progress(*columns, console=RichConsole(file=self._out)) as bar:
                task = bar.add_task(what, total=total)
                yield lambda n: bar.advance(task, n)
            return
        lines = _Lines(what, total, unit, self.say)
        yield lines.advance
        lines.done()


class _Lines:
    def __init__(self, what: str, total: int | None, unit: str, say: Callable[[str], None]) -> None:
        self._what, self._total, self._unit, self._say = what, total, unit, say
        self._count = 0
        self._started = self._said = time.monotonic()

    def advance(self, n: int) -> None:
        self._count += n
        if time.monotonic() - self._said >= EVERY:
            self._said = time.monotonic()
            self._say(self._line())

    def done(self) -> None:
        self._say(f"{self._what}: {self._count} {self._unit} in {time.monotonic() - self._started:.1f} s")

    def _line(self) -> str:
        rate = self._count / max(time.monotonic() - self._started, 1e-9)
        if not self._total:
            return f"{self._what}: {self._count} {self._unit}, {rate:.0f}/s"
        left = (self._total - self._count) / rate if rate else float("inf")
        return (
            f"{self._what}: {self._count}/{self._total} {self._unit} ({100 * self._count // self._total}%), "
            f"{rate:.0f}/s, about {left:.0f} s left"
        )
