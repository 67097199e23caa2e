"""boochat.cli: ``token`` prints a valid session JWT; ``up`` runs the stack, says when it is ready,
and stops everything on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from support.client import Client
from support.stack import free_ports

from boochat.datadir import DataDir

SECRET = "cli-test-secret-0123456789abcdef0123"
BOOCHAT = (sys.executable, "-m", "boochat.cli")


def clean_env(**values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BOOCHAT_")}
    return {**env, **values}


def test_token_prints_a_session_jwt() -> None:
    """One line on stdout: an HS256 JWT with the claims PROTOCOL.md requires."""
    result = subprocess.run(
        [*BOOCHAT, "token", "u-1", "--name", "Ann", "--email", "ann@example.com"],
        env=clean_env(BOOCHAT_JWT_SECRET=SECRET),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert "\n" not in token
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="boochat", issuer="boochat")
    assert (claims["sub"], claims["name"], claims["email"]) == ("u-1", "Ann", "ann@example.com")
    assert claims["exp"] > claims["iat"]


def test_token_signs_with_the_data_folders_secret(tmp_path: Path) -> None:
    """Without BOOCHAT_JWT_SECRET, the secret ``boochat up`` made in BOOCHAT_DATA_DIR; none there
    yet: one line saying so (there is no built-in secret)."""
    env = clean_env(BOOCHAT_DATA_DIR=str(tmp_path / "data"))
    refused = subprocess.run(
        [*BOOCHAT, "token", "u-1", "--name", "Ann"], env=env, capture_output=True, text=True, timeout=30
    )
    assert refused.returncode == 1 and refused.stdout == ""
    [line] = [json.loads(text) for text in refused.stderr.splitlines()]
    assert "holds no session secret" in line["reason"] and str(tmp_path / "data") in line["reason"]

    with DataDir.at(tmp_path / "data").claim() as claim:  # as boochat up's first start does
        secret, _ = claim.session_secret()
    result = subprocess.run(
        [*BOOCHAT, "token", "u-1", "--name", "Ann"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"], audience="boochat", issuer="boochat")
    assert claims["sub"] == "u-1"


def test_replay_without_a_running_stack_says_so(tmp_path: Path) -> None:
    env = clean_env(BOOCHAT_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run(
        [*BOOCHAT, "replay", "rooms", "--dry-run"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    [line] = [json.loads(text) for text in result.stderr.splitlines()]
    assert line["reason"] == (
        f"boochat replay: BOOCHAT_MONGO_URL is not set and no boochat up is running on {tmp_path / 'data'} "
        "(BOOCHAT_DATA_DIR)"
    )


def test_up_refuses_an_unknown_service() -> None:
    result = subprocess.run([*BOOCHAT, "up", "--scale", "mailer=1"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "unknown service 'mailer'" in result.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(("options", "processes"), [((), 1), (("--split",), 9)], ids=["one process", "split"])
async def test_up_runs_the_stack_until_sigterm(
    amqp_url: str, namespace: str, tmp_path: Path, options: tuple[str, ...], processes: int
) -> None:
    """With no Mongo URL it starts the stand-in; prints one ready line per gateway; SIGTERM: exit 0,
    no child left. Its children: the stand-in (with ``--split``, a gateway and the seven workers too)."""
    port = free_ports(1)
    stderr = (tmp_path / "up.log").open("wb")
    up = await asyncio.create_subprocess_exec(
        *BOOCHAT,
        "up",
        *options,
        env=clean_env(
            BOOCHAT_NAMESPACE=namespace,
            BOOCHAT_GATEWAY_PORT=str(port),
            BOOCHAT_FILES_PORT=str(free_ports(1)),
            BOOCHAT_AMQP_URL=amqp_url,
            BOOCHAT_DATA_DIR=str(tmp_path / "data"),
            BOOCHAT_DEV_LOGIN="true",
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )
    assert up.stdout is not None
    try:
        line = await asyncio.wait_for(up.stdout.readline(), 90)
        assert line.decode() == f"Boochat is ready: ws://127.0.0.1:{port}/ws\n", (tmp_path / "up.log").read_text()
        children = child_pids(up.pid)
        assert len(children) == processes
        async with await Client.connect(f"ws://127.0.0.1:{port}/ws", dev_user={"id": "cli-u1", "name": "Cli"}) as c:
            assert (await c.ok("get_me"))["user"]["id"] == "cli-u1"
    finally:
        up.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(up.wait(), 40)
        stderr.close()
    assert returncode == 0, (tmp_path / "up.log").read_text()[-3000:]
    assert await up.stdout.read() == b""  # nothing else on stdout
    assert not still_running(children)


def still_running(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]
