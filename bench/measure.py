"""CPU-seconds and peak memory of the processes under test, sampled with psutil.

Each process is watched under a label (``gateway-1``, ``stand-in``, ``synapse``...). CPU-seconds are
user + system time spent between ``start()`` and ``stop()``; the peak RSS is the largest resident set
seen by samples every ``SAMPLE_SECONDS``. A process that is replaced (a supervisor's restart) keeps
its label: the time of both runs is counted. The watch also notes the seconds it ran and the CPU-seconds
the whole machine was busy meanwhile: what else competed with the peer (other work on the machine).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

SAMPLE_SECONDS = 0.25
SPEED_ROUNDS = 200_000


def speed_index() -> float:
    """Seconds this process takes for a fixed piece of work (``SPEED_ROUNDS`` JSON encodes and
    decodes of a small message, what the peers do most): a reading of the machine's speed, taken
    before and after a run, so that runs on other days can be set side by side. Lower is faster."""
    message = {"type": "send_message", "id": "0" * 32, "data": {"room_id": "1" * 32, "content": "x" * 40}}
    started = time.process_time()
    for _ in range(SPEED_ROUNDS):
        json.loads(json.dumps(message))
    return round(time.process_time() - started, 3)


@dataclass
class Usage:
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    group: str = "server"  # "server", "database", "broker (shared)", "load"


class Watch:
    """``pids()`` names the processes to watch now, by label; it is asked at every sample."""

    def __init__(self, pids: Callable[[], dict[str, tuple[int | None, str]]]) -> None:
        self._pids = pids
        self.seconds = 0.0  # from start() to stop()
        self.machine_cpu_seconds = 0.0  # every process's of the machine, ours and others', meanwhile
        self._started = 0.0
        self._processes: dict[int, psutil.Process] = {}
        self._start_cpu: dict[int, float] = {}
        self._last_cpu: dict[int, float] = {}
        self._usage: dict[str, Usage] = {}
        self._label_pids: dict[str, set[int]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._usage = {}
        self._label_pids = {}
        self._start_cpu = {}
        self._last_cpu = {}
        self._started = time.monotonic()
        self.machine_cpu_seconds = -machine_busy_seconds()
        self._sample(first=True)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, Usage]:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._sample()
        self.seconds = round(time.monotonic() - self._started, 2)
        self.machine_cpu_seconds = round(self.machine_cpu_seconds + machine_busy_seconds(), 2)
        for label, pids in self._label_pids.items():
            self._usage[label].cpu_seconds = round(
                sum(self._last_cpu.get(pid, 0.0) - self._start_cpu.get(pid, 0.0) for pid in pids), 2
            )
        return self._usage

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            self._sample()

    def _sample(self, first: bool = False) -> None:
        for label, (pid, group) in self._pids().items():
            usage = self._usage.setdefault(label, Usage(group=group))
            if pid is None:
                continue
            try:
                process = self._processes.get(pid) or self._processes.setdefault(pid, psutil.Process(pid))
                with process.oneshot():
                    times = process.cpu_times()
                    rss = process.memory_info().rss
            except psutil.Error:  # it ended since it was named: its last sample stands
                continue
            cpu = times.user + times.system
            pids = self._label_pids.setdefault(label, set())
            if pid not in pids:
                pids.add(pid)
                # Watched from its start if it started after us (a restart): all its time counts.
                self._start_cpu[pid] = cpu if first else 0.0
            self._last_cpu[pid] = cpu
            usage.peak_rss_mb = max(usage.peak_rss_mb, round(rss / 2**20, 1))


def machine_busy_seconds() -> float:
    """CPU-seconds every core of the machine has been busy since boot (not idle, not waiting for I/O)."""
    times = psutil.cpu_times()
    return times.user + times.system + sum(getattr(times, name, 0.0) for name in ("nice", "irq", "softirq"))


def resident_bytes(pids: dict[str, tuple[int | None, str]]) -> dict[str, int]:
    """Resident memory now, by label, of the server's and the database's processes."""
    resident = {}
    for label, (pid, group) in pids.items():
        if pid is not None and group in ("server", "database"):
            try:
                resident[label] = psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
    return resident


def resident_mb(pids: dict[str, tuple[int | None, str]]) -> float:
    """Resident memory now, in MiB, of the server's and the database's processes together (at rest:
    started, nobody connected)."""
    total = 0
    for pid, group in pids.values():
        if pid is not None and group in ("server", "database"):
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
    return round(total / 2**20, 1)


def pid_listening(port: int) -> int | None:
    """The process listening on TCP ``port`` (the RabbitMQ node of the stack: others may run beside it)."""
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
            return connection.pid
    return None


async def settle(pids: list[int], timeout: float, busy_below: float = 0.05) -> float | None:
    """Wait until ``pids`` together use less than ``busy_below`` of a core over a second: the server
    has finished what the last load left it (a backlog would otherwise burden the next profile).
    Seconds waited, or None if it was still busy after ``timeout``."""
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.Error:
            continue

    def used() -> float:
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    started = asyncio.get_running_loop().time()
    before = used()
    while (waited := asyncio.get_running_loop().time() - started) < timeout:
        await asyncio.sleep(1.0)  # the sampling interval of the measure itself
        now = used()
        if now - before < busy_below:
            return round(waited + 1.0, 1)
        before = now
    return None
