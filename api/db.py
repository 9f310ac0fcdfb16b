"""The engine, and `Database`: transactions for a tenant, the raw connections of the hot
paths, and the checks that tell whether PostgreSQL can be served from."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.repository import SessionView, Tx
from api.repository.base import stamp_tenant_script
from api.repository.rooms import JoinView, fetch_join_view
from api.repository.sessions import fetch_session_view
from api.settings import Settings


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


class Database:
    """Owns the engine; hands out transactions bound to a tenant."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def tx(self, tenant_id: int | None = None) -> AsyncIterator[Tx]:
        """A transaction; with a tenant, stamped for row-level security and bound to it."""
        async with self.engine.begin() as conn:
            tx = Tx(conn, tenant_id)
            if tenant_id is not None:
                await tx.stamp_tenant()
            yield tx

    async def isolation_problems(self) -> list[str]:
        """Why row-level security would NOT apply to this application's queries, if at all."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT r.rolname, r.rolsuper, r.rolbypassrls, EXISTS (SELECT 1 "
                        "FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user)"
                        " AS owns FROM pg_roles r WHERE r.rolname = current_user"
                    )
                )
            ).one()
        problems = []
        if row.rolsuper:
            problems.append(f"role {row.rolname} is a superuser")
        if row.rolbypassrls:
            problems.append(f"role {row.rolname} has BYPASSRLS")
        if row.owns:
            problems.append(f"role {row.rolname} owns the tables")
        return problems

    @asynccontextmanager
    async def raw(self) -> AsyncIterator[Any]:
        """A pooled connection's asyncpg driver connection (same role and settings)."""
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            yield raw.driver_connection

    @asynccontextmanager
    async def raw_tx(self, tenant_id: int) -> AsyncIterator[Any]:
        """A tenant's transaction on the raw asyncpg connection, for the reads of a hot path
        (a join): BEGIN and the tenant stamp travel in one round trip. A connection left in
        the transaction (an error, a cancellation) is closed rather than pooled."""
        async with self.engine.connect() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            try:
                await raw.execute(stamp_tenant_script(tenant_id, begin=True))
                yield raw
                await raw.execute("COMMIT")
            finally:
                if raw.is_in_transaction():
                    await conn.invalidate()

    async def join_view(
        self, tenant_id: int, room: str, user_id: int, unread_cap: int
    ) -> JoinView | None:
        """What a join reads (the room, membership, read state): three round trips."""
        async with self.raw_tx(tenant_id) as raw:
            return await fetch_join_view(raw, tenant_id, room, user_id, unread_cap)

    async def session_view(self, tenant_id: int, session_id: uuid.UUID) -> SessionView | None:
        """The session check behind every request and socket: one round trip."""
        async with self.raw() as conn:
            return await fetch_session_view(conn, tenant_id, session_id)

    async def notify(self, channel: str, payload: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(select(func.pg_notify(channel, payload)))

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(select(1))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
