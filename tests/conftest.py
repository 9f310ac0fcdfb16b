"""Real PostgreSQL (DATABASE_URL's server, or the embedded one) with a fresh database per
run and real migrations; a live server on a real socket; tables truncated per test."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from api.cli import run_migrations
from api.embedded import start_embedded_postgres
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
    live = LiveServer(settings_for(database_url)).start()
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
    "ws_ticket",
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
            await conn.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
        finally:
            await conn.close()

    asyncio.run(truncate())


@dataclass
class Account:
    tenant: str
    username: str
    password: str
    access_token: str
    refresh_token: str
    cookie: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class Factory:
    """Tenants, users, logins and rooms, made through the real services and HTTP."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.tenant_ids: dict[str, int] = {}

    def tenant(self, slug: str | None = None) -> str:
        slug = slug or f"t-{secrets.token_hex(3)}"

        async def make(s: Any) -> int:
            return int(await s.accounts.create_tenant(slug, slug.title()))

        self.tenant_ids[slug] = self.server.call(make)
        return slug

    def user(
        self,
        tenant: str,
        username: str,
        password: str = "correct horse battery",
        role: str = "member",
    ) -> str:
        tenant_id = self.tenant_ids.get(tenant) or self.server.call(
            lambda s: s.accounts.tenant_id(tenant)
        )
        self.server.call(lambda s: s.accounts.create_user(tenant_id, username, password, role))
        return password

    def login(
        self,
        tenant: str,
        username: str,
        password: str = "correct horse battery",
        server: LiveServer | None = None,
    ) -> Account:
        with (server or self.server).http() as client:
            r = client.post(
                "/auth/login", json={"tenant": tenant, "username": username, "password": password}
            )
        assert r.status_code == 200, r.text
        body = r.json()
        return Account(
            tenant,
            username,
            password,
            body["access_token"],
            body["refresh_token"],
            r.cookies["session"],
        )

    def account(
        self,
        tenant: str | None = None,
        username: str | None = None,
        role: str = "member",
        server: LiveServer | None = None,
    ) -> Account:
        """A new user (in a new tenant unless given), logged in on `server` (default: the
        shared one)."""
        tenant = tenant or self.tenant()
        username = username or f"u{secrets.token_hex(3)}"
        password = self.user(tenant, username, role=role)
        return self.login(tenant, username, password, server=server)

    def room(self, account: Account, name: str = "general", private: bool = False) -> str:
        with self.server.http() as client:
            r = client.post(
                "/rooms", json={"name": name, "private": private}, headers=account.headers
            )
        assert r.status_code == 201, r.text
        return name


@pytest.fixture
def factory(server: LiveServer) -> Factory:
    return Factory(server)
