"""Every setting of PROTOCOL.md, read from the environment in one place."""

from __future__ import annotations

from functools import cached_property

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.routing import Names


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOOCHAT_", frozen=True)

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    mongo_url: str | None = None
    namespace: str = "boochat"
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8765
    jwt_secret: str | None = None
    token_ttl_seconds: int = 86400
    dev_login: bool = False
    max_frame_bytes: int = 65536
    rate_limit_per_minute: int = 600
    allowed_origins: str | None = None
    google_client_id: str | None = None
    allowed_emails: str | None = None
    google_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    fcm_credentials: str | None = None
    fcm_endpoint: str = "https://fcm.googleapis.com/v1/projects/{project_id}/messages:send"

    # Not client-visible; for operators and tests.
    request_timeout_seconds: float = 10.0
    auth_timeout_seconds: float = 10.0
    prefetch: int = 16
    # How often the users worker looks for gateways that died with connections open (presence).
    presence_sweep_seconds: float = 30.0
    # How long <ns>.events.log keeps events (RabbitMQ's x-max-age: "365D", "12h"); unset keeps all,
    # which replay needs to rebuild from the first event.
    log_max_age: str | None = None
    log_level: str = "info"
    # Plain HTTP for operators, apart from the client port: /metrics (Prometheus), /healthz, /readyz.
    # Every gateway and worker process serves it; 0 turns it off. ``boochat up`` gives each child
    # its own port, counting up from this one.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9100

    @field_validator("dev_login", mode="before")
    @classmethod
    def _truthy(cls, value: object) -> bool:
        """PROTOCOL.md: ``true``, ``1``, ``yes`` in any case turn it on; anything else is off."""
        return str(value).strip().lower() in {"true", "1", "yes"}

    @cached_property
    def names(self) -> Names:
        return Names(self.namespace)

    @property
    def origins(self) -> tuple[str, ...]:
        return _split(self.allowed_origins)

    @property
    def emails(self) -> frozenset[str]:
        return frozenset(email.lower() for email in _split(self.allowed_emails))

    def require_mongo_url(self) -> str:
        if not self.mongo_url:
            raise SystemExit("BOOCHAT_MONGO_URL is not set (boochat up starts a local stand-in)")
        return self.mongo_url
