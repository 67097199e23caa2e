"""Every line a process writes on stderr is one JSON object.

structlog's events and the standard library's loggers (aio-pika, aiormq, websockets, asyncio,
pymongo, firebase-admin, google-auth, Python's warnings) go through one handler whose structlog
``ProcessorFormatter`` renders both alike: ``timestamp``, ``level``, ``logger``, ``service``,
``event``, the request id of the client frame wherever it travels, and a traceback as the
``exception`` field (a string, so one line). Loggers that libraries gave a console handler of their
own are adopted. ``route_uncaught`` sends what would otherwise print a bare traceback (an uncaught
exception, in any thread) through the same handler.

Message text, tokens, secrets and emails stay out of logs at ``info`` and above: values under
``PRIVATE`` keys, at any depth of what is logged (a dict in a dict, a list of dicts), are replaced by
their length, whoever logs them; a validation error's input values are cut out of its text and of a
traceback (``describe_error``). At ``debug`` they are kept, for local diagnosis.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from types import TracebackType
from typing import Any

import structlog
from pydantic import ValidationError
from structlog.typing import EventDict, WrappedLogger

from contracts.errors import without_input

# Keys whose values are what users wrote or credentials: a push's body, a message's content, tokens,
# secrets, emails. Compared in lower case, at any depth.
PRIVATE = frozenset(
    {
        "body",
        "content",
        "text",
        "token",
        "tokens",
        "id_token",
        "google_id_token",
        "access_token",
        "refresh_token",
        "authorization",
        "password",
        "secret",
        "jwt_secret",
        "client_secret",
        "private_key",
        "credentials",
        "fcm_credentials",
        "email",
        "emails",
        "allowed_emails",
    }
)
DEPTH = 8  # how deep ``hide_private`` looks into what is logged
# A validation error's text (``str(ValidationError)``, also the end of its traceback) has a line per
# problem: ``  <msg> [type=int_parsing, input_value='what the client sent', input_type=str]``.
PROBLEM_LINE = re.compile(
    r"^(?P<indent>[ \t]+)(?P<msg>.*) \[type=(?P<type>\w+), input_value=.*, input_type=\w+\]$", re.MULTILINE
)


def configure(service: str, level: str = "info") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _Service(service),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        hide_private,
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == HANDLER]:  # configure() again: replace ours
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level.upper())
    _adopt_printing_loggers()
    logging.captureWarnings(True)  # warnings.warn(...) becomes a log line, not two lines of text
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached: tests (structlog.testing.capture_logs) reconfigure after loggers were first used.
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)


HANDLER = "boochat-json"


class _Service:
    """Names the process in every line, from any thread (context variables do not reach plain threads)."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        event.setdefault("service", self.service)
        return event


def _adopt_printing_loggers() -> None:
    """Loggers that libraries gave a console handler of their own (FastStream does so for
    ``faststream`` when it is imported, colored text on stdout) log through ours instead."""
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            printing = [h for h in logger.handlers if type(h) is logging.StreamHandler]  # not files, not ours
            for handler in printing:
                logger.removeHandler(handler)
            if printing:
                logger.propagate = True
                logger.setLevel(logging.NOTSET)  # the configured level decides, as for every logger


def hide_private(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    if method == "debug":
        return event
    for key, value in list(event.items()):
        if isinstance(key, str) and key.lower() in PRIVATE:
            event[key] = _hidden(value)
        elif key == "exception" and isinstance(value, str):  # a traceback, rendered by format_exc_info
            event[key] = without_inputs(value)
        else:
            event[key] = _hide(value, DEPTH)
    return event


def _hidden(value: object) -> object:
    if value is None:
        return None
    return f"<{len(value) if isinstance(value, str | bytes) else type(value).__name__} hidden>"


def _hide(value: object, depth: int) -> object:
    """``value`` with what private keys hold hidden, in dicts, lists and tuples down to ``depth``;
    a copy where something changed (what the caller logged is not touched)."""
    if depth == 0:
        return value
    if isinstance(value, dict):
        return {
            k: _hidden(v) if isinstance(k, str) and k.lower() in PRIVATE else _hide(v, depth - 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hide(v, depth - 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_hide(v, depth - 1) for v in value)
    return value


def without_inputs(text: str) -> str:
    """``text`` (a validation error's, or a traceback ending in one) without the input values."""

    def problem(found: re.Match[str]) -> str:
        message = without_input({"type": found["type"], "msg": found["msg"]})
        return f"{found['indent']}{message} [type={found['type']}]"

    return PROBLEM_LINE.sub(problem, text)


def describe_error(error: BaseException) -> str:
    """``Type: message`` for a log line or a header, without what a validation error echoes of its
    input: only each problem's location, type and message."""
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '-'}: {without_input(problem)} "
            f"[type={problem['type']}]"
            for problem in error.errors(include_url=False)
        )
        return f"ValidationError: {error.error_count()} errors for {error.title}: {problems}"
    return without_inputs(f"{type(error).__name__}: {error}")


def route_uncaught() -> None:
    """Uncaught exceptions of the main thread, of other threads, and exceptions Python can only
    report (``Exception ignored in ...``) become JSON lines too. Only for processes we run: pytest
    keeps its own hooks."""
    log = logging.getLogger("boochat.uncaught")

    def uncaught(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        log.critical("uncaught_exception", exc_info=(kind, error, tb))

    def in_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not SystemExit:
            log.error("uncaught_exception_in_thread %s", getattr(args.thread, "name", "?"), exc_info=args.exc_value)

    def unraisable(raised: sys.UnraisableHookArgs) -> None:
        log.error("exception_ignored %s: %r", raised.err_msg or "in", raised.object, exc_info=raised.exc_value)

    sys.excepthook = uncaught
    threading.excepthook = in_thread
    sys.unraisablehook = unraisable
