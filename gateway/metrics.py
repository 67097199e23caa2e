"""The gateway's Prometheus metrics, one registry per gateway (served by ``boochat.health`` on the
metrics port, never on the clients' port).

Labels stay bounded: request types are the protocol's (or ``invalid`` for a frame that names none),
outcomes are ``ok`` or an error code.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

INVALID = "invalid"  # the type label of a frame without a known type

# Seconds a frame waits in a connection's send queue: a healthy client drains it in milliseconds.
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds from a request to its reply: most take a worker's round trip, none more than the
# request timeout (10 s by default).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge("boochat_gateway_connections", "Open WebSocket connections", registry=self.registry)
        self.frames_received = Counter(
            "boochat_gateway_frames_received", "Messages received from clients", registry=self.registry
        )
        self.frames_sent = Counter(
            "boochat_gateway_frames_sent",
            "Messages sent to clients, by kind (reply or event)",
            ["kind"],
            registry=self.registry,
        )
        self.requests = Counter(
            "boochat_gateway_requests",
            "Requests answered, by type and outcome (ok or the error code)",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "boochat_gateway_request_duration_seconds",
            "Time from a request to its reply, by type (those a worker answers, and authenticate)",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.send_wait = Histogram(
            "boochat_gateway_send_wait_seconds",
            "Time a frame waited in its connection's send queue before being written, by kind: "
            "for events, the delivery lag the gateway adds",
            ["kind"],
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.deliveries = Counter(
            "boochat_gateway_deliveries", "Deliveries taken from the broker", registry=self.registry
        )
        self.slow_clients = Counter(
            "boochat_gateway_slow_clients_dropped",
            "Connections closed because their send queue was full",
            registry=self.registry,
        )
        self.broker_ready = Gauge(
            "boochat_gateway_broker_ready", "1 while connected to the broker", registry=self.registry
        )
        # Memory per connection (issue 26), read when scraped, never per connection: the process's
        # resident memory, and divided by the open connections. With ``boochat up``'s one process
        # the workers' memory is in it too; a dashboard may divide the first by the connections.
        self.resident_memory = Gauge(
            "boochat_gateway_resident_memory_bytes",
            "Resident memory of the gateway's process (in one-process boochat up, the workers' too)",
            registry=self.registry,
        )
        self.resident_memory.set_function(lambda: float(resident_bytes()))
        self.connection_memory = Gauge(
            "boochat_gateway_connection_memory_bytes",
            "Resident memory of the gateway's process per open connection (0 without connections)",
            registry=self.registry,
        )
        self.connection_memory.set_function(self._per_connection)
        self._sent: dict[str, tuple[Histogram, Counter]] = {}

    def _per_connection(self) -> float:
        # The connections gauge's own sample: collecting the registry from here would recurse.
        open_ = next(iter(self.connections.collect())).samples[0].value
        return resident_bytes() / open_ if open_ > 0 else 0.0

    def frame_sent(self, kind: str, waited: float) -> None:
        """A frame of ``kind`` written to a connection ``waited`` seconds after it was queued. The
        labelled series are looked up once per kind: this runs for every frame of every member."""
        if (series := self._sent.get(kind)) is None:
            series = self._sent[kind] = (self.send_wait.labels(kind), self.frames_sent.labels(kind))
        wait, count = series
        wait.observe(waited)
        count.inc()

    def watch_broker(self, ready: Callable[[], bool]) -> None:
        self.broker_ready.set_function(lambda: float(ready()))

    def request(self, type_: str, outcome: str, seconds: float | None = None) -> None:
        """Count an answered request; ``seconds`` it took, when it waited for someone."""
        self.requests.labels(type_, outcome).inc()
        if seconds is not None:
            self.latency.labels(type_).observe(seconds)


STATM = Path("/proc/self/statm")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """The process's resident memory now (Linux: /proc/self/statm, one small read); elsewhere its
    peak (``getrusage``, kilobytes on Linux and BSD, bytes on macOS)."""
    try:
        return int(STATM.read_text().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024
