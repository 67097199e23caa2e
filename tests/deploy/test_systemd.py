"""deploy/systemd/: the units run ``boochat up`` and ``boochat backup`` as an unprivileged user, stop
within time for a graceful stop, write only the data folder; systemd itself accepts them (when
``systemd-analyze`` is here); README's "Run it for your group" names only real files and commands."""

from __future__ import annotations

import configparser
import inspect
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from boochat.cli import _parser
from boochat.mongo import StandIn
from boochat.settings import Settings
from boochat.supervisor import Supervisor
from workers.runtime.service import GRACEFUL_TIMEOUT_SECONDS

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/opt/boochat"  # where the README installs the repository


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True, delimiters=("=",), comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # systemd's keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


def environment(service: configparser.SectionProxy) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(service["Environment"]))


def default(function: object, name: str) -> float:
    value = inspect.signature(function).parameters[name].default  # type: ignore[arg-type]
    assert isinstance(value, float)
    return value


def test_the_service_runs_boochat_up_on_the_data_folder_as_an_unprivileged_user() -> None:
    service = unit("boochat.service")["Service"]
    assert service["ExecStart"] == f"{service['WorkingDirectory']}/.venv/bin/boochat up"  # where make venv puts it
    assert service["WorkingDirectory"] == INSTALLED
    assert service["User"] and service["User"] not in {"root", "0"}
    data = environment(service)["BOOCHAT_DATA_DIR"]
    assert service["ReadWritePaths"].split() == [data]
    assert service["StateDirectory"] == Path(data).relative_to("/var/lib").as_posix()  # made for it, its own
    assert service["StateDirectoryMode"] == "0700"
    assert service["EnvironmentFile"].lstrip("-") == "/etc/boochat/boochat.env"
    assert service["Restart"] == "on-failure"
    assert (service["NoNewPrivileges"], service["ProtectSystem"]) == ("yes", "strict")
    assert unit("boochat.service")["Install"]["WantedBy"] == "multi-user.target"


def test_the_service_stops_after_a_graceful_stop_can_end() -> None:
    """SIGTERM goes to ``boochat up`` alone (``mixed``), which stops its children (each FastStream
    worker finishes in-flight messages, then the supervisor's SIGKILL) and then the stand-in: the
    unit waits longer than all of that before its own SIGKILL."""
    service = unit("boochat.service")["Service"]
    assert service["KillMode"] == "mixed"
    stop = float(service["TimeoutStopSec"])
    children = default(Supervisor.__init__, "stop_timeout")
    assert stop > GRACEFUL_TIMEOUT_SECONDS and children > GRACEFUL_TIMEOUT_SECONDS
    assert stop > children + default(StandIn.stop, "timeout")


def test_the_backup_timer_runs_boochat_backup_with_the_service_settings() -> None:
    service, backup = unit("boochat.service")["Service"], unit("boochat-backup.service")["Service"]
    assert backup["Type"] == "oneshot"
    for key in ("User", "WorkingDirectory", "Environment", "EnvironmentFile"):
        assert backup[key] == service[key], key
    [command] = re.findall(r"exec (\S+) backup ", backup["ExecStart"])
    assert command == f"{service['WorkingDirectory']}/.venv/bin/boochat"
    assert environment(service)["BOOCHAT_DATA_DIR"] in backup["ReadWritePaths"].split()
    timer = unit("boochat-backup.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Install"]["WantedBy"] == "timers.target"


def test_the_example_settings_are_settings() -> None:
    names = re.findall(r"^#?(BOOCHAT_[A-Z0-9_]+)=", (UNITS / "boochat.env.example").read_text(), re.M)
    known = {f"BOOCHAT_{name.upper()}" for name in Settings.model_fields}
    assert "BOOCHAT_PUBLIC_URL" in names and set(names) <= known, sorted(set(names) - known)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """``systemd-analyze verify``: no unknown key or section, commands that exist (``boochat`` from
    this checkout's .venv standing in for the installed one)."""
    here = str(ROOT / ".venv" / "bin" / "boochat")
    names = ["boochat.service", "boochat-backup.service", "boochat-backup.timer"]
    for name in names:
        (tmp_path / name).write_text((UNITS / name).read_text().replace(f"{INSTALLED}/.venv/bin/boochat", here))
    verified = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in names)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr


# README -----------------------------------------------------------------------------------------

PENDING = {"invite"}  # being added to the command line beside this section: drop it here once it is


def section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.partition("\n## Run it for your group\n")[2].partition("\n## ")[0]


def test_the_readme_section_names_real_files_commands_and_settings() -> None:
    text = section()
    assert text, "README has no section 'Run it for your group'"
    for path in set(re.findall(r"\bdeploy/[\w./-]+\w", text)):
        assert (ROOT / path).exists() or list(ROOT.glob(path)), path
    commands = {name for action in _parser()._subparsers._group_actions for name in action.choices}  # type: ignore[union-attr]
    blocks = "\n".join(re.findall(r"```\w*\n(.*?)```", text, re.S))
    # `boochat X` in prose, and code lines that run it (the shell function, or the venv's).
    subcommands = set(re.findall(r"`boochat ([a-z]+)", text)) | set(
        re.findall(r"^(?:boochat|.*\.venv/bin/boochat) ([a-z]+)", blocks, re.M)
    )
    assert {"backup", "restore", "drop", "replay"} <= subcommands
    assert subcommands - PENDING <= commands, sorted(subcommands - PENDING - commands)
    targets = re.findall(r"(?:^|&& |`)make (\w+)", text, re.M)
    assert "venv" in targets
    for target in targets:
        assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), re.M), target
    for installed in re.findall(r"/etc/systemd/system/|systemctl \w+ (?:--now )?([\w-]+)", text):
        if installed:
            assert (UNITS / f"{installed}.service").exists() or (UNITS / installed).exists(), installed
    settings = set(re.findall(r"BOOCHAT_[A-Z0-9_]+", text))
    assert settings <= {f"BOOCHAT_{name.upper()}" for name in Settings.model_fields}, settings
