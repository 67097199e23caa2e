"""A plain-HTTP GET for the tests of health and metrics ports (no client library needed), and a
reader of Prometheus samples."""

from __future__ import annotations

import asyncio
import re


async def get(url: str, method: str = "GET", timeout: float = 5.0) -> tuple[int, str]:
    """``(status, body)`` of one request to ``http://host:port/path``."""
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(f"{method} /{path} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            response = (await reader.read()).decode()
        finally:
            writer.close()
    head, _, body = response.partition("\r\n\r\n")
    return int(head.split()[1]), body


def sample(body: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 when absent), summed over the series matching ``labels``."""
    total = 0.0
    for line in body.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total
