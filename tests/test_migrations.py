"""The migrations go up and down cleanly on an empty database, and what they enforce holds."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from tests.support import tenant_with_room

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    "tenant",
    "app_user",
    "auth_session",
    "ws_ticket",
    "login_throttle",
    "room",
    "membership",
    "message",
    "broadcast",
    "idempotency_key",
}


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _sql(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql)
        return rows
    finally:
        await conn.close()


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    scratch = f"switchboard_mig_{secrets.token_hex(3)}"
    admin = _dsn(str(make_url(database_url).set(database="postgres")))
    asyncio.run(_sql(admin, f'CREATE DATABASE "{scratch}"'))
    url = make_url(database_url).set(database=scratch).render_as_string(hide_password=False)
    tables_sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    try:
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes["database_url"] = url
        config.attributes["configure_logging"] = False
        command.upgrade(config, "head")
        tables = {r["tablename"] for r in asyncio.run(_sql(_dsn(url), tables_sql))}
        assert tables >= EXPECTED
        indexes = {
            r["indexname"]
            for r in asyncio.run(
                _sql(_dsn(url), "SELECT indexname FROM pg_indexes WHERE tablename = 'message'")
            )
        }
        assert "uq_message_room_id_seq" in indexes  # the keyset for history pages
        assert "uq_message_sender_client_msg_id" in indexes
        command.downgrade(config, "base")
        tables = {r["tablename"] for r in asyncio.run(_sql(_dsn(url), tables_sql))}
        assert tables & EXPECTED == set()
        command.upgrade(config, "head")
    finally:
        asyncio.run(_sql(admin, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))


def test_a_user_is_deleted_only_with_their_tenant(database_url: str) -> None:
    """message.sender_id has no foreign key (its per-row check was a quarter of a batch's
    time): deleting a user row on its own is refused, while deleting the tenant still takes
    its users and every message with it."""

    async def main() -> tuple[str, int]:
        conn = await asyncpg.connect(_dsn(database_url))
        try:
            tenant, room, user = await tenant_with_room(conn)
            await conn.execute(
                "INSERT INTO message (tenant_id, room_id, seq, sender_id, sender, body, "
                "created_at) VALUES ($1, $2, 1, $3, 'ann', 'hi', now())",
                tenant,
                room,
                user,
            )
            with pytest.raises(asyncpg.RestrictViolationError) as refused:
                await conn.execute("DELETE FROM app_user WHERE id = $1", user)
            await conn.execute("DELETE FROM tenant WHERE id = $1", tenant)
            left = await conn.fetchval(
                "SELECT (SELECT count(*) FROM app_user WHERE tenant_id = $1) "
                "+ (SELECT count(*) FROM message WHERE tenant_id = $1)",
                tenant,
            )
            return str(refused.value), left
        finally:
            await conn.close()

    refused, left = asyncio.run(main())
    assert "only with their tenant" in refused
    assert left == 0
