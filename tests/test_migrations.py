"""The one initial migration goes up and down cleanly on an empty database."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

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
