"""Typed settings: init kwargs > environment > settings.toml > defaults.

The contract names three plain environment variables (DATABASE_URL, REDIS_URL,
SWITCHBOARD_JWT_SECRET); every other key is SWITCHBOARD_<SECTION>__<KEY>.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_SETTINGS_FILE = Path(__file__).resolve().parent.parent / "settings.toml"


def _d(default: Any, why: str, **kw: Any) -> Any:
    """A setting's default, with the reason shown next to it in settings.toml."""
    if callable(default):
        return Field(default_factory=default, description=why, **kw)
    return Field(default, description=why, **kw)


class ServerSettings(BaseModel):
    host: str = _d("127.0.0.1", "address to listen on (0.0.0.0 for every interface)")
    port: int = _d(8000, "port to listen on")
    data_dir: Path = _d(Path(".switchboard"), "embedded PostgreSQL data and demo state")
    access_log: bool = _d(True, "uvicorn's access log (query credentials are masked)")
    gc_threshold: list[int] = _d(
        lambda: [50_000, 50, 100],
        "Python's collector: rare full passes keep delivery p99 low (bench/)",
    )
    graceful_shutdown_seconds: float = _d(
        10.0, "on SIGTERM, how long open connections get to close before the process exits"
    )
    ssl_certfile: str = _d("", "serve HTTPS and wss:// with this certificate (PEM); empty = off")
    ssl_keyfile: str = _d("", "the certificate's private key (PEM)")
    forwarded_allow_ips: Annotated[list[str], NoDecode] = _d(
        lambda: ["127.0.0.1"],
        "proxies whose X-Forwarded-For/-Proto are trusted (addresses or networks; in the "
        "environment a JSON list or a comma-separated string); the client address of login "
        "throttling is the forwarded one only from these",
    )

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def tls(self) -> bool:
        return bool(self.ssl_certfile)


class DatabaseSettings(BaseModel):
    url: str = _d("", "or DATABASE_URL; empty = embedded PostgreSQL under server.data_dir")
    app_role: str = _d(
        "switchboard_app",
        "queries run as this role (no superuser, no BYPASSRLS, owns nothing); empty when the "
        "URL already logs in as a restricted role",
    )
    pool_size: int = _d(10, "pooled connections per worker")
    max_overflow: int = _d(10, "extra connections per worker under bursts")


class IssuerSettings(BaseModel):
    """Another identity provider whose tokens are trusted (matched by their `iss`)."""

    issuer: str
    audience: str
    algorithms: list[Literal["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "HS256"]]
    jwks_url: str | None = None
    public_key: str | None = None  # PEM
    secret: SecretStr | None = None  # HS256
    tenant_claim: str = "tid"  # names an existing tenant's slug
    tenant: str | None = None  # or: every user of this issuer is in this tenant
    username_claim: str = "sub"
    role_claim: str | None = None  # "admin" makes an admin; anything else a member

    @model_validator(mode="after")
    def _one_key_source(self) -> IssuerSettings:
        sources = [self.jwks_url, self.public_key, self.secret]
        if sum(s is not None for s in sources) != 1:
            raise ValueError(
                f"issuer {self.issuer!r}: give exactly one of jwks_url, public_key, secret"
            )
        hmac = {a for a in self.algorithms if a.startswith("HS")}
        if hmac and (self.secret is None or len(hmac) != len(self.algorithms)):
            raise ValueError(
                f"issuer {self.issuer!r}: HS256 needs `secret`, and only HMAC algorithms"
            )
        if self.secret is not None and not hmac:
            raise ValueError(f"issuer {self.issuer!r}: a `secret` is only for HMAC algorithms")
        return self


class AuthSettings(BaseModel):
    jwt_secret: SecretStr = _d(
        SecretStr(""), "never here: set SWITCHBOARD_JWT_SECRET (HS256 key, used as given)"
    )
    issuer: str = _d("switchboard", "`iss` of access tokens")
    audience: str = _d("switchboard", "`aud` of access tokens")
    algorithm: str = _d("HS256", "pinned: tokens signed otherwise are refused")
    access_ttl_seconds: int = _d(900, "life of an access token (15 min)")
    refresh_ttl_seconds: int = _d(30 * 24 * 3600, "life of a session: 30 days")
    ticket_ttl_seconds: int = _d(30, "WebSocket tickets: single use, at most 60 s", ge=1, le=60)
    leeway_seconds: int = _d(10, "clock skew tolerated on exp/iat")
    argon2_memory_kib: int = _d(19456, "OWASP's argon2id minimum: 19 MiB, t=2, p=1")
    argon2_time_cost: int = _d(2, "argon2id passes")
    hash_workers: int = _d(0, "processes for password hashing; 0 = cores - 1 (at least 1)")
    hash_nice: int = _d(19, "their nice value: sockets (the event loop) come first")
    hash_idle: bool = _d(True, "hash only on otherwise idle cores (Linux SCHED_IDLE)")
    hash_max_pending: int = _d(8, "logins waiting for a hash beyond this get 503 + Retry-After")
    hash_cpu_share: float = _d(
        0.5, "hashing may use this much of one core on average; more logins get a fast 503", gt=0
    )
    issuers: list[IssuerSettings] = _d(
        lambda: [], "other token issuers to trust (JSON list in SWITCHBOARD_AUTH__ISSUERS)"
    )
    jwks_min_refresh_seconds: float = _d(
        60.0, "refetch a JWKS for an unknown kid at most this often"
    )


class HttpSettings(BaseModel):
    allowed_origins: list[str] = _d(
        lambda: ["http://localhost:8000", "http://127.0.0.1:8000"],
        "Origins allowed for cookie-authenticated unsafe requests and cookie sockets",
    )
    secure_cookies: bool = _d(False, "mark the session cookie Secure (set true behind HTTPS)")


class WsSettings(BaseModel):
    auth_timeout: float = _d(5.0, "seconds for the first `auth` frame of a socket")
    max_message_bytes: int = _d(65536, "larger frames close the socket with 1009")
    max_opening: int = _d(
        256, "sockets authenticating at once; more are closed 1013 `overloaded` (retry)", ge=1
    )
    send_queue_size: int = _d(1024, "frames queued per socket; overflow closes it with 1013")
    idle_timeout: float = _d(0, "0 = off; else seconds without a client frame -> 1000 idle")
    ping_interval: float = _d(20.0, "WebSocket pings from the server (0 = off)")
    ping_timeout: float = _d(20.0, "close a socket whose pong is this late")
    replay_page_size: int = _d(500, "messages read per query during a `since` replay")
    recent_per_room: int = _d(
        64,
        "a room's latest messages kept in memory while it has members here: a reconnect "
        "whose `since` is among them replays without a query (0 = always read Postgres; "
        "memory: up to this many frames per room with members)",
    )


class RoomsSettings(BaseModel):
    auto_create: bool = _d(False, "a join of a missing room creates it (public)")


class BrokerSettings(BaseModel):
    url: str = _d("", "or REDIS_URL; empty = in-process memory broker (one worker)")
    gap_wait_ms: int = _d(150, "hold an out-of-order message this long before reading the gap")


class LimitsSettings(BaseModel):
    max_body_chars: int = _d(4000, "longest message body")
    rooms_per_socket: int = _d(100, "rooms one socket may join")
    sockets_per_user: int = _d(20, "open sockets per user, on every worker together")
    messages_per_second: float = _d(10.0, "per user and worker (token bucket rate)")
    message_burst: int = _d(20, "token bucket size")
    login_failures_per_user: int = _d(5, "failed logins per user within the window")
    login_failures_per_address: int = _d(50, "failed logins per address within the window")
    login_window_seconds: int = _d(300, "the login throttle's window")
    signal_bytes: int = _d(1024, "largest `data` of a signal frame, JSON-encoded")
    signals_per_second: float = _d(20.0, "signals per user and worker (a bucket of its own)")
    signal_burst: int = _d(40, "the signal token bucket's size")
    unread_cap: int = _d(999, "unread counts stop here", ge=1)
    publish_batch: int = _d(1000, "messages in one POST /publish", ge=1)


class WebhookSettings(BaseModel):
    deliver: bool = _d(True, "this process delivers webhooks (false: leave it to others)")
    timeout_seconds: float = _d(5.0, "a delivery that takes longer failed", gt=0)
    backoff_base_seconds: float = _d(5.0, "first retry after about this long", gt=0)
    backoff_max_seconds: float = _d(3600.0, "retries are spaced at most this much", gt=0)
    max_attempts: int = _d(8, "then the delivery is `failed` (redeliver by hand)", ge=1)
    allow_private_addresses: bool = _d(False, "allow loopback/private/link-local targets")
    poll_seconds: float = _d(0.5, "how often a worker looks for due deliveries", gt=0)
    concurrency: int = _d(32, "deliveries in flight per worker", ge=1)
    per_endpoint: int = _d(4, "of those, at most this many to one endpoint", ge=1)
    max_response_bytes: int = _d(65536, "read at most this much of an answer")


class RetentionSettings(BaseModel):
    max_age_days: int = _d(0, "delete entries older than this; 0 = keep forever", ge=0)
    interval_seconds: float = _d(3600.0, "how often the pruner runs", gt=0)
    batch_size: int = _d(500, "entries deleted per short transaction", ge=1)


class PersisterSettings(BaseModel):
    batch_max: int = _d(500, "messages per group commit at most")
    batch_wait_ms: float = _d(
        0, "wait this long for more messages before a commit (they gather while one is written)"
    )
    drain_seconds: float = _d(
        10.0, "on shutdown, time to store what is queued (after connections closed)"
    )


class _PlainEnvAliases(PydanticBaseSettingsSource):
    """The contract's un-prefixed variables, mapped onto their sections."""

    ALIASES: ClassVar[dict[str, tuple[str, str]]] = {
        "DATABASE_URL": ("database", "url"),
        "REDIS_URL": ("broker", "url"),
        "SWITCHBOARD_JWT_SECRET": ("auth", "jwt_secret"),
    }

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for env, (section, key) in self.ALIASES.items():
            value = os.environ.get(env)
            if value:
                found.setdefault(section, {})[key] = value
        return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", env_nested_delimiter="__", extra="ignore"
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    ws: WsSettings = Field(default_factory=WsSettings)
    rooms: RoomsSettings = Field(default_factory=RoomsSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    persister: PersisterSettings = Field(default_factory=PersisterSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("SWITCHBOARD_SETTINGS") or DEFAULT_SETTINGS_FILE)
        return (
            init_settings,
            _PlainEnvAliases(settings_cls),
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )


class ConfigError(RuntimeError):
    """A setting that makes the server unsafe or impossible to start."""


def require_jwt_secret(settings: Settings) -> None:
    """`serve` refuses to run with no secret (or a toy one) outside --demo and tests."""
    if len(settings.auth.jwt_secret.get_secret_value()) < 32:
        raise ConfigError(
            "SWITCHBOARD_JWT_SECRET is not set (or shorter than 32 characters). "
            "Set it to a long random string, e.g. `export SWITCHBOARD_JWT_SECRET="
            "$(python3 -c 'import secrets;print(secrets.token_urlsafe(48))')`, "
            "or run `switchboard serve --demo` to try Switchboard locally."
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
