"""boochat.logs: every stderr line is one JSON object, whoever logs (structlog, the standard library's
loggers, warnings, uncaught exceptions in any thread), tracebacks as a field; private values hidden
at info."""

from __future__ import annotations

import json
import subprocess
import sys

from gateway.google import without_token

PROGRAM = """
import logging, threading, warnings, structlog
import faststream  # gives the "faststream" logger a console handler of its own, on import
from boochat import logs

logs.configure("probe", "{level}")
logs.route_uncaught()
log = structlog.get_logger("probe")
structlog.get_logger("faststream").info("FastStream app starting...")
log.info("push_logged", user_id="bob", body="Ann: the secret plan", token="tok-0123456789")
logging.getLogger("aio_pika.robust_connection").warning("Connection attempt to %s failed", "amqp://x")
logging.getLogger("websockets.server").info("connection rejected (%d %s)", 403, "Forbidden")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("asyncio").exception("Task exception was never retrieved")
    log.exception("forward_failed", type="send_message")
warnings.warn("deprecated\\nacross lines", DeprecationWarning, stacklevel=1)
logging.getLogger("pymongo.topology").debug("heartbeat")
log.debug("per_message", content="only at debug")
thread = threading.Thread(target=lambda: 1 / 0, name="sender")
thread.start()
thread.join()
raise RuntimeError("at the top")
"""


def run(level: str) -> tuple[list[dict], str]:
    code = PROGRAM.replace("{level}", level)
    result = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and result.stdout == ""
    return [json.loads(line) for line in result.stderr.splitlines()], result.stderr


def test_every_line_is_one_json_object_with_tracebacks_as_a_field() -> None:
    lines, raw = run("info")
    by_event = {line["event"]: line for line in lines}
    assert all(line["service"] == "probe" and "timestamp" in line and "level" in line for line in lines)
    assert by_event["Connection attempt to amqp://x failed"]["logger"] == "aio_pika.robust_connection"
    assert by_event["connection rejected (403 Forbidden)"]["level"] == "info"
    assert by_event["FastStream app starting..."]["logger"] == "faststream"
    assert raw.count("FastStream app starting...") == 1  # not also in FastStream's own colors
    for event in ("Task exception was never retrieved", "forward_failed"):
        assert (
            by_event[event]["exception"].startswith("Traceback") and "ZeroDivisionError" in by_event[event]["exception"]
        )
    [warning] = [line for line in lines if line["logger"] == "py.warnings"]
    assert "DeprecationWarning: deprecated\nacross lines" in warning["event"]
    [in_thread] = [line for line in lines if line["event"].startswith("uncaught_exception_in_thread")]
    assert "sender" in in_thread["event"] and "ZeroDivisionError" in in_thread["exception"]
    assert "RuntimeError: at the top" in by_event["uncaught_exception"]["exception"]
    assert "heartbeat" not in raw and "per_message" not in raw  # below the level


def test_message_text_and_tokens_are_hidden_at_info_and_kept_at_debug() -> None:
    lines, raw = run("info")
    push = next(line for line in lines if line["event"] == "push_logged")
    assert push["user_id"] == "bob" and push["body"] == "<20 hidden>" and push["token"] == "<14 hidden>"
    assert "secret plan" not in raw and "tok-0123456789" not in raw
    lines, raw = run("debug")
    assert next(line for line in lines if line["event"] == "per_message")["content"] == "only at debug"


def test_a_refused_google_token_is_cut_out_of_the_reason() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLWJ5dGVz"
    reason = without_token(f"Wrong number of segments in token: b'{token}x'", token)
    assert reason == "Wrong number of segments in token: b'<token>x'"
    header, payload, _ = token.split(".")
    assert without_token(f"Can't parse segment: {payload}", token) == "Can't parse segment: <token>"
    assert without_token("Token expired, 1 < 2", token) == "Token expired, 1 < 2"
    assert header not in without_token(f"{header}.{payload}.other", token)
