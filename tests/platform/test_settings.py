"""boochat.settings and the command line around it: a value out of range stops a process with one
line naming the setting, unknown BOOCHAT_* variables are named, ``--version``, help everywhere."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from boochat import cli
from boochat.settings import Settings, load, unknown_variables

BOOCHAT = (sys.executable, "-m", "boochat.cli")

OUT_OF_RANGE = [
    ("GATEWAY_PORT", "0"),
    ("GATEWAY_PORT", "70000"),
    ("METRICS_PORT", "-1"),
    ("METRICS_PORT", "65536"),
    ("TOKEN_TTL_SECONDS", "-5"),
    ("MAX_FRAME_BYTES", "100"),
    ("MAX_FRAME_BYTES", str(64 * 1024 * 1024)),
    ("RATE_LIMIT_PER_MINUTE", "0"),
    ("REQUEST_TIMEOUT_SECONDS", "0"),
    ("PRESENCE_SWEEP_SECONDS", "-1"),
    ("PREFETCH", "0"),
    ("LOG_LEVEL", "loud"),
    ("LOG_MAX_AGE", "forever"),
    ("NAMESPACE", "a.b"),
    ("RETRY_DELAYS", "-2"),
    ("RETRY_DELAYS", "soon"),
]


def clean_env(**values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("BOOCHAT_")}
    return {**env, **{f"BOOCHAT_{name}": value for name, value in values.items()}}


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """This process's environment without the developer's BOOCHAT_* variables."""
    for key in list(os.environ):
        if key.upper().startswith("BOOCHAT_"):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
def test_a_value_out_of_range_stops_with_one_line_naming_the_setting(environ, name: str, value: str) -> None:
    environ.setenv(f"BOOCHAT_{name}", value)
    with pytest.raises(SystemExit) as stopped:
        load()
    line = stopped.value.code
    assert isinstance(line, str) and "\n" not in line
    assert line.startswith(f"invalid setting BOOCHAT_{name}={value}: "), line


def test_the_s3_store_needs_a_bucket(environ) -> None:
    environ.setenv("BOOCHAT_FILES_STORE", "s3")
    with pytest.raises(SystemExit) as stopped:
        load()
    assert str(stopped.value.code).startswith("invalid setting BOOCHAT_S3_BUCKET=None: "), stopped.value.code
    environ.setenv("BOOCHAT_S3_BUCKET", "boochat-files")
    assert (load().files_store, load().s3_bucket) == ("s3", "boochat-files")
    environ.setenv("BOOCHAT_S3_BUCKET", "Not A Bucket")
    with pytest.raises(SystemExit):
        load()


@pytest.mark.parametrize(
    ("name", "value", "field", "read"),
    [
        ("METRICS_PORT", "0", "metrics_port", 0),  # 0: off
        ("GATEWAY_PORT", "65535", "gateway_port", 65535),
        ("LOG_LEVEL", "WARNING", "log_level", "warning"),
        ("LOG_MAX_AGE", "365D", "log_max_age", "365D"),
        ("MAX_FRAME_BYTES", "1024", "max_frame_bytes", 1024),
        ("RETRY_DELAYS", "0.5, 2,10", "retry_delays", (0.5, 2.0, 10.0)),
        ("RETRY_DELAYS", "(1.0, 5.0, 30.0)", "retry_delays", (1.0, 5.0, 30.0)),  # as child_env writes it
        ("RETRY_DELAYS", "", "retry_delays", ()),  # parked at the first failure
    ],
)
def test_values_at_the_edges_are_taken(environ, name: str, value: str, field: str, read: object) -> None:
    environ.setenv(f"BOOCHAT_{name}", value)
    assert getattr(load(), field) == read


def test_unknown_variables_are_the_boochat_ones_that_are_no_setting() -> None:
    environ = {"BOOCHAT_GATWAY_PORT": "1", "BOOCHAT_GATEWAY_PORT": "2", "boochat_prefetch": "3", "HOME": "/root"}
    assert unknown_variables(environ) == ["BOOCHAT_GATWAY_PORT"]
    assert unknown_variables({f"BOOCHAT_{name.upper()}": "x" for name in Settings.model_fields}) == []


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    """Every stderr line, each of which must be one JSON object."""
    return [json.loads(line) for line in result.stderr.splitlines()]


@pytest.mark.parametrize("command", [("gateway",), ("up",), ("token", "u1", "--name", "U")])
def test_a_process_with_a_bad_setting_stops_with_one_json_line(command: tuple[str, ...]) -> None:
    result = subprocess.run(
        [*BOOCHAT, *command], env=clean_env(GATEWAY_PORT="70000"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1 and result.stdout == ""
    [line] = stderr_lines(result)
    assert line["level"] == "error" and line["event"] == "stopped"
    assert line["reason"].startswith("invalid setting BOOCHAT_GATEWAY_PORT=70000: ")
    assert "Traceback" not in result.stderr


def test_an_unknown_variable_is_reported_at_start() -> None:
    """A warning line names it (and the setting probably meant); the command still runs."""
    env = clean_env(GATWAY_PORT="9000", JWT_SECRET="settings-test-secret-0123456789abcdef")
    result = subprocess.run(
        [*BOOCHAT, "token", "u1", "--name", "U"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    warning = json.loads(result.stderr.splitlines()[0])
    assert warning["level"] == "warning" and warning["event"] == "unknown_setting"
    assert (warning["variable"], warning["did_you_mean"]) == ("BOOCHAT_GATWAY_PORT", "BOOCHAT_GATEWAY_PORT")


def test_version() -> None:
    result = subprocess.run([*BOOCHAT, "--version"], env=clean_env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.strip() == "boochat 0.1.0"


def test_every_command_and_option_has_help() -> None:
    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                missing.extend(f"{path} {name}" for name in action.choices if name not in helped)
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif action.help is None:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(cli._parser(), "boochat")
    assert not missing, f"without help text: {missing}"
