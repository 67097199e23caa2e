"""Every line a process writes on stderr is one JSON object.

structlog's events and the standard library's loggers (aio-pika, aiormq, websockets, asyncio,
pymongo, firebase-admin, google-auth, Python's warnings) go through one handler whose structlog
``ProcessorFormatter`` renders both alike: ``timestamp``, ``level``, ``logger``, ``service``,
``event``, the request id of the client frame wherever it travels, and a traceback as the
``exception`` field (a string, so one line). Loggers that libraries gave a console handler of their
own are adopted. ``route_uncaught`` sends what would otherwise print a bare traceback (an uncaught
exception, in any thread) through the same handler.

Message text and tokens stay out of logs at ``info`` and above: values under ``PRIVATE`` keys are
replaced by their length, whoever logs them. At ``debug`` they are kept, for local diagnosis.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

# Keys whose values are what users wrote or credentials: a push's body, a message's content, tokens.
PRIVATE = frozenset({"body", "content", "text", "token", "id_token", "google_id_token", "authorization", "password"})


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
    for key in PRIVATE & event.keys():
        value = event[key]
        if value is not None:
            event[key] = f"<{len(value) if isinstance(value, str | bytes) else type(value).__name__} hidden>"
    return event


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
