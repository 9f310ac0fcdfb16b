"""Typed settings: init kwargs > environment > settings.toml > defaults.

The contract names three plain environment variables (DATABASE_URL, REDIS_URL,
SWITCHBOARD_JWT_SECRET); every other key is SWITCHBOARD_<SECTION>__<KEY>.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_SETTINGS_FILE = Path(__file__).resolve().parent.parent / "settings.toml"


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./.switchboard")
    access_log: bool = True
    gc_threshold: list[int] = Field(default_factory=lambda: [50_000, 50, 100])


class DatabaseSettings(BaseModel):
    url: str = ""
    # The application's queries run as this role (row-level security applies to it); empty
    # when DATABASE_URL already logs in as a restricted role.
    app_role: str = "switchboard_app"
    pool_size: int = 10
    max_overflow: int = 10


class AuthSettings(BaseModel):
    jwt_secret: str = ""
    issuer: str = "switchboard"
    audience: str = "switchboard"
    algorithm: str = "HS256"
    access_ttl_seconds: int = 900
    refresh_ttl_seconds: int = 30 * 24 * 3600
    ticket_ttl_seconds: int = Field(30, ge=1, le=60)
    leeway_seconds: int = 10
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    hash_workers: int = 0  # 0 = cores - 1 (at least 1)
    hash_nice: int = 10  # hashing threads yield the CPU to sockets
    hash_max_pending: int = 64  # beyond this, logins get 503 + Retry-After


class HttpSettings(BaseModel):
    allowed_origins: list[str] = Field(default_factory=list)
    secure_cookies: bool = False


class WsSettings(BaseModel):
    auth_timeout: float = 5.0
    max_message_bytes: int = 65536
    send_queue_size: int = 1024
    idle_timeout: float = 0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    replay_page_size: int = 500


class RoomsSettings(BaseModel):
    auto_create: bool = False


class BrokerSettings(BaseModel):
    url: str = ""
    gap_wait_ms: int = 150


class LimitsSettings(BaseModel):
    max_body_chars: int = 4000
    rooms_per_socket: int = 100
    sockets_per_user: int = 20
    messages_per_second: float = 10.0
    message_burst: int = 20
    login_failures_per_user: int = 5
    login_failures_per_address: int = 50
    login_window_seconds: int = 300


class PersisterSettings(BaseModel):
    batch_max: int = 500
    batch_wait_ms: float = 2


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
    if len(settings.auth.jwt_secret) < 32:
        raise ConfigError(
            "SWITCHBOARD_JWT_SECRET is not set (or shorter than 32 characters). "
            "Set it to a long random string, e.g. `export SWITCHBOARD_JWT_SECRET="
            "$(python3 -c 'import secrets;print(secrets.token_urlsafe(48))')`, "
            "or run `switchboard serve --demo` to try Switchboard locally."
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
