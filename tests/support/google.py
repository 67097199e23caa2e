"""A stand-in for Google sign-in: its certificate endpoint on loopback, and ID tokens it signs.

The endpoint answers like https://www.googleapis.com/oauth2/v1/certs: a JSON object from key id to
a PEM X.509 certificate, with ``Cache-Control: max-age``. Tokens are RS256 JWTs signed by pyjwt with
the certificate's key and its ``kid`` in the header, carrying the claims Google puts in ID tokens.
The server runs in a thread, so a gateway in this process or in a child can fetch from it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

CLIENT_ID = "boochat-tests.apps.googleusercontent.com"
ISSUER = "https://accounts.google.com"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate_pem(key: rsa.RSAPrivateKey) -> str:
    """A self-signed certificate of ``key``'s public half, as Google's v1 endpoint serves them."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "boochat-tests.googleusercontent.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class FakeGoogle:
    """``with FakeGoogle() as google:`` serves ``google.certs_url``; ``google.token(...)`` signs."""

    def __init__(self, client_id: str = CLIENT_ID, max_age: int | None = 3600) -> None:
        self.client_id = client_id
        self.max_age = max_age
        self.key = new_key()
        self.kid = uuid.uuid4().hex
        self.fetches = 0  # GETs of the certificates answered so far
        body = json.dumps({self.kid: certificate_pem(self.key)}).encode()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(body))
        # serve_forever notices shutdown() only between polls: poll often, so stopping is quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake google", daemon=True
        )

    @property
    def certs_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/oauth2/v1/certs"

    def claims(self, **changes: Any) -> dict[str, Any]:
        """The claims of a fresh ID token for a verified, allowed user; ``None`` drops a claim."""
        now = int(time.time())
        values: dict[str, Any] = {
            "iss": ISSUER,
            "azp": self.client_id,
            "aud": self.client_id,
            "sub": str(uuid.uuid4().int)[:21],  # Google account ids are long decimal strings
            "email": "ann@example.com",
            "email_verified": True,
            "name": "Ann Example",
            "picture": "https://lh3.googleusercontent.com/a/ann",
            "iat": now,
            "exp": now + 3600,
        }
        values.update(changes)
        return {key: value for key, value in values.items() if value is not None}

    def token(self, key: rsa.RSAPrivateKey | None = None, **changes: Any) -> str:
        """An ID token with ``claims(**changes)``, signed by this stand-in (or by ``key``) under its kid."""
        return jwt.encode(self.claims(**changes), key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def _handler(self, body: bytes) -> type[BaseHTTPRequestHandler]:
        google = self

        class Certs(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path != "/oauth2/v1/certs":
                    self.send_error(404)
                    return
                google.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                if google.max_age is not None:
                    self.send_header("Cache-Control", f"public, max-age={google.max_age}, must-revalidate")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
                pass

        return Certs

    def __enter__(self) -> FakeGoogle:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
