"""boochat.supervisor: restarts, stopping, readiness, and the process list of the stack."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from boochat import supervisor as supervisor_module
from boochat.settings import Settings
from boochat.supervisor import (
    Backoff,
    Process,
    Supervisor,
    child_env,
    http_status,
    parse_scale,
    stack_processes,
)

WAIT = 10.0
SLEEPER = (sys.executable, "-c", "import time; time.sleep(300)")
FAST = Backoff(first=0.05, limit=0.2, healthy_after=60)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def contains(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text()


async def wait_dead(pid: int, timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if not alive(pid):
                return
            await asyncio.sleep(0.05)  # polling interval: a stranger's death has no event


async def wait_for_text(path: Path, text: str, timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if contains(path, text):
                return
            await asyncio.sleep(0.05)  # polling interval: the child's only signal is its output


def test_backoff_doubles_to_its_limit_and_resets_after_a_healthy_run() -> None:
    """0.5, 1, 2 ... 30 s while the child keeps dying quickly; back to 0.5 s after a long run."""
    backoff = Backoff()
    delays = [backoff.next(None, 0.1)]
    for _ in range(8):
        delays.append(backoff.next(delays[-1], 0.1))
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff.next(30, ran_for=backoff.healthy_after) == 0.5


async def test_restarts_a_child_that_dies(tmp_path: Path) -> None:
    """A killed child comes back as a new process; one that keeps exiting is restarted again and again."""
    crashing = (sys.executable, "-c", "raise SystemExit(3)")
    supervisor = Supervisor([Process("sleeper", SLEEPER), Process("crasher", crashing)], backoff=FAST, log_dir=tmp_path)
    async with supervisor:
        await supervisor.wait_started("sleeper", 1, timeout=WAIT)
        first = supervisor.pid("sleeper")
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await supervisor.wait_started("sleeper", 2, timeout=WAIT)
        second = supervisor.pid("sleeper")
        assert second is not None and second != first
        await supervisor.wait_started("crasher", 3, timeout=WAIT)
    assert not alive(second)
    assert supervisor.pid("sleeper") is None


async def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    """SIGTERM first; a child still running after ``stop_timeout`` gets SIGKILL."""
    stubborn = textwrap.dedent("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        time.sleep(300)
    """)
    supervisor = Supervisor([Process("stubborn", (sys.executable, "-c", stubborn))], stop_timeout=0.5, log_dir=tmp_path)
    await supervisor.start()
    await supervisor.wait_started("stubborn", 1, timeout=WAIT)
    pid = supervisor.pid("stubborn")
    assert pid is not None
    await wait_for_text(tmp_path / "stubborn.log", "ignoring SIGTERM")
    await asyncio.wait_for(supervisor.stop(), WAIT)
    assert not alive(pid)


async def test_children_get_the_stack_environment_and_their_own(tmp_path: Path) -> None:
    """The base environment, then each process's own variables on top; output lands in log_dir."""
    show = (sys.executable, "-c", "import os; print(os.environ['SHARED'], os.environ['OWN'], flush=True)")
    env = {**os.environ, "SHARED": "base", "OWN": "base"}
    async with Supervisor([Process("show", show, env={"OWN": "mine"})], env=env, log_dir=tmp_path) as supervisor:
        await supervisor.wait_started("show", 1, timeout=WAIT)
        await wait_for_text(tmp_path / "show.log", "base mine")


async def test_wait_ready_polls_the_ready_url() -> None:
    """``wait_ready`` returns once the URL answers 200; nothing listening is status None."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/readyz"
    async with server, Supervisor([Process("ready", SLEEPER, ready_url=url)]) as supervisor:
        await supervisor.wait_ready("ready", timeout=WAIT)
        assert await http_status(url) == 200
    assert await http_status(url) is None


SUPERVISOR_SCRIPT = """
import asyncio, sys
from boochat.logs import configure
from boochat.supervisor import Process, Supervisor, run_until_signalled

CHILD = (sys.executable, "-c", sys.argv[1])

async def main():
    configure("test-supervisor")  # logs to stderr, as in boochat up: stdout is ours
    supervisor = Supervisor([Process("a", CHILD), Process("b", CHILD)])

    async def report():
        for name in "ab":
            await supervisor.wait_started(name, 1, timeout=10)
        print(supervisor.pid("a"), supervisor.pid("b"), flush=True)

    await run_until_signalled(supervisor, report)

asyncio.run(main())
"""


async def start_supervisor_process(child_code: str) -> tuple[asyncio.subprocess.Process, list[int]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SUPERVISOR_SCRIPT, child_code, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), WAIT)
    pids = [int(pid) for pid in line.split()]
    assert len(pids) == 2 and all(alive(pid) for pid in pids), line
    return process, pids


async def test_sigterm_stops_every_child_and_exits_0() -> None:
    """A supervisor told to stop by SIGTERM stops its children and exits with 0."""
    process, pids = await start_supervisor_process("import time; time.sleep(300)")
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), WAIT) == 0
    for pid in pids:
        await wait_dead(pid)


async def test_supervised_children_stop_when_the_supervisor_is_killed() -> None:
    """Even after SIGKILL of the supervisor, its children notice the closed pipe and stop."""
    child = "from boochat.supervisor import exit_when_supervisor_dies as e; e(); import time; time.sleep(300)"
    process, pids = await start_supervisor_process(child)
    process.kill()
    await process.wait()
    for pid in pids:
        await wait_dead(pid)


# The stack's process list ---------------------------------------------------------------------


def test_parse_scale() -> None:
    """``name=count`` pairs; unknown services and non-numbers are refused."""
    assert parse_scale("messaging=2, gateway=1") == {"messaging": 2, "gateway": 1}
    assert parse_scale("") == {}
    with pytest.raises(ValueError, match="unknown service"):
        parse_scale("mailer=1")
    with pytest.raises(ValueError, match="whole number"):
        parse_scale("rooms=two")


def test_stack_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gateways on consecutive ports, then each written worker's replicas; unwritten ones refused."""
    monkeypatch.setattr(supervisor_module, "available_workers", lambda: ("rooms", "users"))
    settings = Settings(gateway_port=9100, gateway_host="127.0.0.1")
    processes = stack_processes(settings, {"gateway": 2, "rooms": 2})
    assert [p.name for p in processes] == ["gateway-1", "gateway-2", "rooms-1", "rooms-2", "users-1"]
    assert [p.env.get("BOOCHAT_GATEWAY_PORT") for p in processes[:2]] == ["9100", "9101"]
    assert [p.ws_url for p in processes[:2]] == ["ws://127.0.0.1:9100/ws", "ws://127.0.0.1:9101/ws"]
    assert processes[1].ready_url == "http://127.0.0.1:9101/readyz"
    assert processes[2].argv[-3:] == ("worker", "rooms", "--supervised")
    assert stack_processes(settings, {"users": 0})[-1].name == "rooms-1"
    with pytest.raises(ValueError, match="not written yet"):
        stack_processes(settings, {"polls": 1})


def test_child_env_is_exactly_the_settings() -> None:
    """Stray BOOCHAT_ variables of the parent are dropped; settings are rendered as the env reads them."""
    settings = Settings(namespace="ns1", dev_login=True, mongo_url="mongodb://127.0.0.1:1")
    env = child_env(settings, base={"PATH": "/bin", "BOOCHAT_FCM_CREDENTIALS": "/stale.json"})
    assert env["PATH"] == "/bin"
    assert "BOOCHAT_FCM_CREDENTIALS" not in env
    assert env["BOOCHAT_NAMESPACE"] == "ns1"
    assert env["BOOCHAT_DEV_LOGIN"] == "true"
    assert env["BOOCHAT_MONGO_URL"] == "mongodb://127.0.0.1:1"
