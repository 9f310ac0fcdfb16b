"""Settings precedence: init > plain env (DATABASE_URL...) > SWITCHBOARD_* env > toml > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.db import to_asyncpg_url
from api.settings import ConfigError, Settings, require_jwt_secret


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in (
        "DATABASE_URL",
        "REDIS_URL",
        "SWITCHBOARD_JWT_SECRET",
        "SWITCHBOARD_SETTINGS",
        "SWITCHBOARD_WS__AUTH_TIMEOUT",
        "SWITCHBOARD_DATABASE__URL",
    ):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_checked_in_toml_defaults(clean_env: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert s.ws.auth_timeout == 5.0
    assert s.rooms.auto_create is False
    assert (
        s.database.url == "" and s.broker.url == "" and s.auth.jwt_secret.get_secret_value() == ""
    )


def test_toml_file_then_env_then_plain_env(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "other.toml"
    toml.write_text(
        "[ws]\nauth_timeout = 7\nmax_message_bytes = 1000\n"
        '[database]\nurl = "postgresql://toml/db"\n'
    )
    clean_env.setenv("SWITCHBOARD_SETTINGS", str(toml))
    assert Settings().ws.auth_timeout == 7
    clean_env.setenv("SWITCHBOARD_WS__AUTH_TIMEOUT", "2")
    s = Settings()
    assert s.ws.auth_timeout == 2 and s.ws.max_message_bytes == 1000
    assert s.database.url == "postgresql://toml/db"
    clean_env.setenv("SWITCHBOARD_DATABASE__URL", "postgresql://nested/db")
    assert Settings().database.url == "postgresql://nested/db"
    clean_env.setenv("DATABASE_URL", "postgresql://plain/db")
    clean_env.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    clean_env.setenv("SWITCHBOARD_JWT_SECRET", "s" * 40)
    s = Settings()
    assert s.database.url == "postgresql://plain/db"
    assert s.broker.url == "redis://127.0.0.1:6379/3"
    assert s.auth.jwt_secret.get_secret_value() == "s" * 40
    assert Settings(ws={"auth_timeout": 9}).ws.auth_timeout == 9  # init wins


def test_plain_database_url_becomes_asyncpg() -> None:
    url = to_asyncpg_url("postgresql://u:p%40ss@db.example:5433/app")
    assert url.drivername == "postgresql+asyncpg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "u",
        "p@ss",
        "db.example",
        5433,
        "app",
    )
    with pytest.raises(ValueError):
        to_asyncpg_url("mysql://u@h/db")


def test_serve_refuses_missing_or_short_secret(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="SWITCHBOARD_JWT_SECRET"):
        require_jwt_secret(Settings())
    with pytest.raises(ConfigError):
        require_jwt_secret(Settings(auth={"jwt_secret": "short"}))
    require_jwt_secret(Settings(auth={"jwt_secret": "k" * 32}))
