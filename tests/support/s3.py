"""A real S3 API server on loopback for the tests: moto's server mode, one per test session."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

from boochat.s3store import s3_store
from boochat.settings import Settings
from support.stack import free_ports


@contextmanager
def moto_server() -> Iterator[str]:
    """The server's address, until the block ends."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    port = free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def s3_settings(endpoint: str, **values: object) -> Settings:
    """Settings for a bucket of its own on the server (made here), so tests never share objects."""
    bucket = f"boochat-{uuid.uuid4().hex[:12]}"
    settings = Settings(
        files_store="s3",
        s3_endpoint_url=endpoint,
        s3_bucket=bucket,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        **values,  # type: ignore[arg-type]
    )
    async with s3_store(settings) as store:
        await store.client.create_bucket(Bucket=bucket)
    return settings
