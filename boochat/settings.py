"""Every setting of PROTOCOL.md, read from the environment in one place.

``load()`` reads them for a process: a value out of its range stops it with one line naming the
setting; ``unknown_variables`` names BOOCHAT_* variables that are no setting (a typo, most likely).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts.routing import Names

Port = Annotated[int, Field(ge=1, le=65535)]
PortOrOff = Annotated[int, Field(ge=0, le=65535)]  # 0 turns the listener off
Positive = Annotated[int, Field(gt=0)]
Seconds = Annotated[float, Field(gt=0)]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


LEAD_UNITS = {"d": 86400, "h": 3600, "m": 60}
MIN_LEAD, MAX_LEAD = 60, 30 * 86400


def lead_seconds(value: str) -> tuple[int, ...]:
    """``"24h,2h"`` -> ``(86400, 7200)``: distinct whole days, hours or minutes, 1 minute to 30 days."""
    leads: list[int] = []
    for part in value.split(","):
        part = part.strip()
        number, unit = part[:-1], part[-1:]
        if not number.isascii() or not number.isdigit() or unit not in LEAD_UNITS:
            raise ValueError(f"{part!r} is not a whole number of days, hours or minutes (1d, 24h, 90m)")
        seconds = int(number) * LEAD_UNITS[unit]
        if not MIN_LEAD <= seconds <= MAX_LEAD:
            raise ValueError(f"{part!r} is not between 1 minute and 30 days")
        if seconds in leads:
            raise ValueError(f"{part!r} is given twice")
        leads.append(seconds)
    return tuple(sorted(leads, reverse=True))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOOCHAT_", frozen=True)

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    mongo_url: str | None = None
    namespace: str = Field("boochat", pattern=r"^[A-Za-z0-9_-]+$")  # names <ns>.events, <ns>.dead, ...
    gateway_host: str = "127.0.0.1"
    gateway_port: Port = 8765
    # What ``boochat up`` keeps across restarts: the Mongo stand-in's databases, the generated session
    # secret, the lock of the running stack (boochat.datadir). Relative to the working directory.
    data_dir: Path = Path("data")
    jwt_secret: str | None = None  # unset: ``boochat up`` uses the data folder's generated secret
    # A session token's lifetime; a device session signing in with its token gets a fresh one (sliding).
    token_ttl_seconds: Positive = 90 * 24 * 3600
    # The web client's address as people reach it (invite links); unset: the gateway's host and port.
    public_url: str | None = Field(None, pattern=r"^https?://[^/?#]+(/[^?#]*)?$")
    dev_login: bool = False
    # Room for an authenticate request at least; websockets buffers a whole frame, so not unbounded.
    max_frame_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 65536
    rate_limit_per_minute: Positive = 600
    # A user's open connections, over every gateway: one more is refused (rate_limited, close 4429).
    max_connections_per_user: Positive = 20
    # Connections of one gateway still signing in: more handshakes are refused with HTTP 503.
    max_pending_connections: Positive = 1000
    # WebSocket handshakes (so sign-ins) one client address may make per minute on one gateway
    # process: more get HTTP 429. 0 turns the limit off (behind a proxy every client shares its address).
    handshakes_per_minute_per_address: Annotated[int, Field(ge=0)] = 600
    # Per user and rolling hour (rooms worker): rooms created (meetups' rooms too), and people added
    # to rooms (invited, or named when creating one). One more is refused (rate_limited).
    max_rooms_per_hour: Positive = 50
    max_invites_per_hour: Positive = 500
    # Messaging (PROTOCOL.md, Everyday chat): how long after sending its sender may edit a message,
    # and the largest room in which a message may mention everyone (``mentions_room``).
    edit_window_seconds: Positive = 86400
    room_mention_max_members: Positive = 50
    # Meetups (PROTOCOL.md, Calendars and reminders): how long before a meetup starts its attendees
    # are reminded, e.g. "24h,2h" (``reminder_leads`` has them in seconds).
    reminder_lead_times: str = "24h,2h"
    # Photos and files (PROTOCOL.md): the gateway's files listener, where clients reach it (unset:
    # the gateway's host on ``files_port``), the largest upload, each user's storage, link lifetime.
    files_port: Port = 8766
    files_url: str | None = Field(None, pattern=r"^https?://[^/?#]+(/[^?#]*)?$")
    max_upload_bytes: Positive = 25 * 1024 * 1024
    storage_quota_bytes: Positive = 1024 * 1024 * 1024
    file_link_ttl_seconds: Positive = 3600
    # The key of file links (32+ bytes), shared by the gateway, messaging and media; unset: derived
    # from BOOCHAT_JWT_SECRET (so deployments need not give the session key to those workers).
    files_secret: str | None = None
    # Where files are kept (boochat/filestore.py, boochat/s3store.py): "local" under data_dir, or
    # "s3", any S3-compatible bucket (AWS, MinIO...), reached by presigned URLs; unset endpoint: AWS.
    files_store: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = Field(None, pattern=r"^https?://[^/?#]+/?$")
    s3_bucket: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", validate_default=True)
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    allowed_origins: str | None = None
    google_client_id: str | None = None
    allowed_emails: str | None = None
    google_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    fcm_credentials: str | None = None
    fcm_endpoint: str = "https://fcm.googleapis.com/v1/projects/{project_id}/messages:send"

    # Not client-visible; for operators and tests.
    request_timeout_seconds: Seconds = 10.0
    auth_timeout_seconds: Seconds = 10.0
    prefetch: Annotated[int, Field(ge=1, le=65535)] = 16  # AMQP's prefetch count is 16 bits
    # How often the users worker looks for gateways that died with connections open (presence).
    presence_sweep_seconds: Seconds = 30.0
    # How often each worker process reloads its mirrors (in-memory read models, e.g. notifications'
    # presence) from its database, to catch up with events it missed while disconnected.
    mirror_reload_seconds: Seconds = 10.0
    # How long <ns>.events.log keeps events (RabbitMQ's x-max-age: "365D", "12h"); unset keeps all,
    # which replay needs to rebuild from the first event.
    log_max_age: str | None = Field(None, pattern=r"^[0-9]+[YMDhms]$")
    log_level: LogLevel = "info"
    # A reaction or projection that fails is tried again after each of these delays in turn (seconds,
    # growing), then parked in <ns>.dead (workers/runtime/retry.py). Comma-separated in the environment.
    retry_delays: Annotated[tuple[Seconds, ...], NoDecode] = (1.0, 5.0, 30.0)
    # Plain HTTP for operators, apart from the client port: /metrics (Prometheus), /healthz, /readyz.
    # Every gateway and worker process serves it; 0 turns it off. ``boochat up`` gives each child
    # its own port, counting up from this one.
    metrics_host: str = "127.0.0.1"
    metrics_port: PortOrOff = 9100

    @field_validator("dev_login", mode="before")
    @classmethod
    def _truthy(cls, value: object) -> bool:
        """PROTOCOL.md: ``true``, ``1``, ``yes`` in any case turn it on; anything else is off."""
        return str(value).strip().lower() in {"true", "1", "yes"}

    @field_validator("s3_bucket")
    @classmethod
    def _bucket_for_s3(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("files_store") == "s3":
            raise ValueError("BOOCHAT_FILES_STORE=s3 needs a bucket")
        return value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _folder(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must name a folder")
        return value

    @field_validator("retry_delays", mode="before")
    @classmethod
    def _delays(cls, value: object) -> object:
        """``1,5,30`` (also as ``child_env`` writes a tuple: ``(1.0, 5.0, 30.0)``)."""
        return _split(value.strip("()[] ")) if isinstance(value, str) else value

    @field_validator("reminder_lead_times")
    @classmethod
    def _leads(cls, value: str) -> str:
        lead_seconds(value)  # raises ValueError, naming what is wrong
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @cached_property
    def names(self) -> Names:
        return Names(self.namespace)

    @property
    def reminder_leads(self) -> tuple[int, ...]:
        """``reminder_lead_times`` in seconds, longest first."""
        return lead_seconds(self.reminder_lead_times)

    @property
    def origins(self) -> tuple[str, ...]:
        return _split(self.allowed_origins)

    @property
    def public_base(self) -> str:
        """Where invite links point: ``BOOCHAT_PUBLIC_URL`` without a trailing slash, else the gateway."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.gateway_host if self.gateway_host not in ("", "0.0.0.0", "::") else "localhost"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.gateway_port}"

    @property
    def files_base(self) -> str:
        """Where file links point: ``BOOCHAT_FILES_URL`` without a trailing slash, else the files port."""
        if self.files_url:
            return self.files_url.rstrip("/")
        host = self.gateway_host if self.gateway_host not in ("", "0.0.0.0", "::") else "localhost"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.files_port}"

    @property
    def links_secret(self) -> str | None:
        """What file links are signed with (``boochat.filelinks.key_of``)."""
        return self.files_secret or self.jwt_secret

    @property
    def emails(self) -> frozenset[str]:
        return frozenset(email.lower() for email in _split(self.allowed_emails))

    def require_mongo_url(self) -> str:
        if not self.mongo_url:
            raise SystemExit(
                "BOOCHAT_MONGO_URL is not set (boochat up starts a local stand-in, and the boochat commands "
                "run with its BOOCHAT_DATA_DIR find it)"
            )
        return self.mongo_url


def load() -> Settings:
    """This process's settings; a value out of range stops it with one line naming the setting."""
    try:
        return Settings()
    except ValidationError as error:
        raise SystemExit(describe(error)) from None


def describe(error: ValidationError) -> str:
    """``invalid setting BOOCHAT_GATEWAY_PORT=70000: Input should be less than or equal to 65535``"""
    problems = []
    for problem in error.errors():
        field = str(problem["loc"][0]).upper() if problem["loc"] else ""
        problems.append(f"BOOCHAT_{field}={problem['input']}: {problem['msg']}")
    return "invalid setting " + "; ".join(problems)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """BOOCHAT_* variables in ``environ`` that are no setting (pydantic-settings ignores them)."""
    known = {f"BOOCHAT_{name.upper()}" for name in Settings.model_fields}
    return sorted(key for key in environ if key.upper().startswith("BOOCHAT_") and key.upper() not in known)
