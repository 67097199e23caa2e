"""gateway.static: the web client's files and /config.json on the clients' port."""

from __future__ import annotations

import asyncio
import json

import pytest
from gwclient import WAIT

from gateway.app import Gateway
from gateway.static import ROOT

pytestmark = pytest.mark.integration


async def fetch(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None):
    """(status, headers with lower-case names, body) of one plain HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    async with asyncio.timeout(WAIT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head, _, body = (await reader.read(-1)).partition(b"\r\n\r\n")  # the gateway closes after answering
        writer.close()
        await writer.wait_closed()
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}, body


async def test_root_is_the_client_page(gateway: Gateway) -> None:
    status, headers, body = await fetch(gateway.port, "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert body == (ROOT / "index.html").read_bytes()
    assert int(headers["content-length"]) == len(body)
    assert "default-src 'self'" in headers["content-security-policy"]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ],
)
async def test_assets_have_their_type_and_an_etag(gateway: Gateway, name: str, content_type: str) -> None:
    status, headers, body = await fetch(gateway.port, f"/{name}")
    assert (status, headers["content-type"], body) == (200, content_type, (ROOT / name).read_bytes())
    assert headers["x-content-type-options"] == "nosniff"
    status, again, body = await fetch(gateway.port, f"/{name}", headers={"If-None-Match": headers["etag"]})
    assert (status, body, again["etag"]) == (304, b"", headers["etag"])


async def test_every_client_module_is_served(gateway: Gateway) -> None:
    for path in ROOT.iterdir():
        assert (await fetch(gateway.port, f"/{path.name}"))[0] == 200, path.name


async def test_head_has_no_body_and_other_methods_are_refused(gateway: Gateway) -> None:
    status, headers, body = await fetch(gateway.port, "/app.js", "HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) == len((ROOT / "app.js").read_bytes())
    status, headers, _ = await fetch(gateway.port, "/app.js", "POST", {"Content-Length": "0"})
    assert (status, headers["allow"]) == (405, "GET, HEAD")


@pytest.mark.parametrize("path", ["/../pyproject.toml", "/..%2fstatic.py", "/web/app.js", "//etc/passwd", "/static.py"])
async def test_nothing_outside_the_client_is_served(gateway: Gateway, path: str) -> None:
    assert (await fetch(gateway.port, path))[0] == 404


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {"google_client_id": None, "dev_login": True}),
        (
            {"google_client_id": "123.apps.googleusercontent.com", "dev_login": False},
            {"google_client_id": "123.apps.googleusercontent.com", "dev_login": False},
        ),
    ],
)
async def test_config_tells_the_client_how_to_sign_in(gateway: Gateway, expected: dict) -> None:
    """Only what the page needs to show its sign-in buttons; never a secret."""
    status, headers, body = await fetch(gateway.port, "/config.json")
    assert (status, headers["content-type"], headers["cache-control"]) == (200, "application/json", "no-store")
    assert json.loads(body) == expected


@pytest.mark.parametrize("overrides", [{"files_url": "https://files.example.com/base/"}])
async def test_the_page_may_reach_the_files_listener_only_besides_itself(gateway: Gateway) -> None:
    """Uploads' PUTs and photos go to the files listener, another origin: the policy names it, nothing more."""
    _, headers, _ = await fetch(gateway.port, "/")
    policy = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
    assert policy["connect-src"] == "'self' https://files.example.com"
    assert policy["img-src"] == "'self' data: https: https://files.example.com"
    assert policy["script-src"] == "'self' https://accounts.google.com/gsi/client"


@pytest.mark.parametrize(
    "overrides", [{"files_store": "s3", "s3_bucket": "boochat", "s3_endpoint_url": "http://127.0.0.1:9000"}]
)
async def test_with_a_bucket_the_page_may_reach_it_too(gateway: Gateway) -> None:
    """With S3, uploads' PUTs go to the bucket and downloads are sent on to it: its origin is named."""
    _, headers, _ = await fetch(gateway.port, "/")
    policy = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
    files = f"http://127.0.0.1:{gateway.files.port}"
    assert policy["connect-src"] == f"'self' {files} http://127.0.0.1:9000"
