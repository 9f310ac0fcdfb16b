"""Real PostgreSQL (DATABASE_URL's server, or the embedded one) with a fresh database per
run and real migrations; a live server on a real socket; tables truncated per test."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from api.cli import run_migrations
from api.embedded import start_embedded_postgres
from tests.factories import Factory
from tests.support import LiveServer, settings_for

ROOT = Path(__file__).resolve().parent.parent


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return start_embedded_postgres(ROOT / ".switchboard" / "test")


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    server_url = make_url(_server_url())
    name = f"switchboard_test_{secrets.token_hex(4)}"
    admin = _dsn(str(server_url.set(database="postgres")))

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    url = server_url.set(database=name).render_as_string(hide_password=False)
    run_migrations(settings_for(url))
    yield url
    asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[LiveServer]:
    # The shared server delivers no webhooks: a test's own server (make_server) does, with
    # that test's webhook settings, and no other worker takes its deliveries.
    live = LiveServer(settings_for(database_url, webhooks={"deliver": False})).start()
    yield live
    live.stop()


@pytest.fixture
def make_server(database_url: str) -> Iterator[Any]:
    """A server with its own settings, for tests that need other limits or timeouts."""
    started: list[LiveServer] = []

    def make(sndbuf: int | None = None, **sections: dict[str, Any]) -> LiveServer:
        live = LiveServer(settings_for(database_url, **sections), sndbuf).start()
        started.append(live)
        return live

    yield make
    for live in started:
        live.stop()


TABLES = (
    "webhook_delivery",
    "webhook_endpoint",
    "api_key",
    "ws_ticket",
    "read_position",
    "message",
    "membership",
    "room",
    "auth_session",
    "broadcast",
    "idempotency_key",
    "app_user",
    "tenant",
    "login_throttle",
)


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> None:
    if "database_url" not in request.fixturenames:
        return
    url = request.getfixturevalue("database_url")

    async def truncate() -> None:
        conn = await asyncpg.connect(_dsn(url))
        try:
            for attempt in range(5):  # servers' background loops (webhooks, retention) may
                try:  # hold a lock TRUNCATE waits for in another order: try again
                    await conn.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
                    return
                except asyncpg.DeadlockDetectedError:
                    if attempt == 4:
                        raise
        finally:
            await conn.close()

    asyncio.run(truncate())


@pytest.fixture
def factory(server: LiveServer) -> Factory:
    return Factory(server)
