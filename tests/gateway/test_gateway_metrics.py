"""gateway.metrics: memory per connection, read when scraped."""

from __future__ import annotations

import psutil

from gateway.metrics import GatewayMetrics, resident_bytes


def test_resident_memory_is_the_process_s_own() -> None:
    """Within a few MiB of what psutil reads (the two reads are not at the same instant)."""
    assert abs(resident_bytes() - psutil.Process().memory_info().rss) < 8 * 2**20


def test_memory_per_connection_is_the_resident_memory_over_the_open_connections() -> None:
    """Sampled at each scrape: 0 with no connection open, then the process's memory shared among them."""
    metrics = GatewayMetrics()
    registry = metrics.registry
    assert registry.get_sample_value("boochat_gateway_connection_memory_bytes") == 0
    metrics.connections.inc(4)
    resident = registry.get_sample_value("boochat_gateway_resident_memory_bytes")
    per_connection = registry.get_sample_value("boochat_gateway_connection_memory_bytes")
    assert resident is not None and per_connection is not None and resident > 0
    assert abs(per_connection * 4 - resident) < 8 * 2**20
    metrics.connections.dec(4)
    assert registry.get_sample_value("boochat_gateway_connection_memory_bytes") == 0
