"""The persister's one call, switchboard_append, against real PostgreSQL: seqs in batch order
per room across tenants, retries answered with the original, and a room of another tenant
refused with nothing stored."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from api.errors import RoomNotFound
from api.protocol import server as frames
from api.repository import MessageRow, MessageStore
from api.services import Services
from tests.support import settings_for, tenant_with_room


@dataclass
class New:
    tenant_id: int
    room_id: int
    sender_id: int | None
    sender: str
    body: str
    kind: str = "user"
    client_msg_id: str | None = None


def _run(database_url: str, work: Any) -> Any:
    async def main() -> Any:
        dsn = make_url(database_url).set(drivername="postgresql")
        conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


def test_a_batch_of_two_tenants_takes_each_rooms_next_seqs_in_order(database_url: str) -> None:
    async def work(conn: Any) -> None:
        t1, r1, u1 = await tenant_with_room(conn)
        t2, r2, u2 = await tenant_with_room(conn)
        batch = [
            New(t2, r2, u2, "ann", "b1"),
            New(t1, r1, u1, "ann", "a1"),
            New(t2, r2, u2, "ann", "b2"),
            New(t1, r1, u1, "ann", "a2", client_msg_id="k"),
        ]
        got = await MessageStore(conn).append(batch, datetime.now(UTC))
        assert [(a.seq, a.original) for a in got] == [(1, None), (1, None), (2, None), (2, None)]
        assert await conn.fetchval("SELECT last_seq FROM room WHERE id = $1", r2) == 2
        stored = await conn.fetch(
            "SELECT body, seq FROM message WHERE room_id = ANY($1) ORDER BY room_id, seq",
            [r1, r2],
        )
        assert [(s["body"], s["seq"]) for s in stored] == [
            ("a1", 1),
            ("a2", 2),
            ("b1", 1),
            ("b2", 2),
        ]
        read = await conn.fetchval(
            "SELECT last_read FROM read_position WHERE room_id = $1 AND user_id = $2", r1, u1
        )
        assert read == 2  # sending moved the sender's read position

    _run(database_url, work)


def test_a_retried_key_is_answered_with_the_original_and_stored_once(database_url: str) -> None:
    async def work(conn: Any) -> None:
        tenant, room, user = await tenant_with_room(conn)
        store = MessageStore(conn)
        await store.append([New(tenant, room, user, "ann", "first", client_msg_id="k1")], _now())
        again = await store.append(
            [
                New(tenant, room, user, "ann", "changed", client_msg_id="k1"),
                New(tenant, room, user, "ann", "second", client_msg_id="k2"),
            ],
            _now(),
        )
        original = again[0].original
        assert original is not None and (original.seq, original.body) == (1, "first")
        assert (again[1].seq, again[1].original) == (2, None)
        assert await conn.fetchval("SELECT count(*) FROM message WHERE room_id = $1", room) == 2
        assert await conn.fetchval("SELECT last_seq FROM room WHERE id = $1", room) == 2

    _run(database_url, work)


def test_a_room_of_another_tenant_is_refused_and_nothing_is_stored(database_url: str) -> None:
    async def work(conn: Any) -> None:
        t1, r1, u1 = await tenant_with_room(conn)
        _, r2, _ = await tenant_with_room(conn)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await MessageStore(conn).append(
                [New(t1, r1, u1, "ann", "fine"), New(t1, r2, u1, "ann", "not t1's room")],
                _now(),
            )
        left = await conn.fetchval(
            "SELECT (SELECT count(*) FROM message WHERE room_id = ANY($1)) "
            "+ (SELECT sum(last_seq) FROM room WHERE id = ANY($1))",
            [r1, r2],
        )
        assert left == 0

    _run(database_url, work)


def _now() -> datetime:
    return datetime.now(UTC)


def test_the_persister_refuses_only_the_message_whose_room_is_gone(database_url: str) -> None:
    """A batch in which one message's room is not its tenant's (deleted since it was sent)
    fails as a whole in the database; the persister stores the rest and answers that one
    `room_not_found`."""

    async def rooms(conn: Any) -> tuple[int, int, int, int]:
        t1, r1, u1 = await tenant_with_room(conn)
        _, r2, _ = await tenant_with_room(conn)
        return t1, r1, u1, r2

    tenant, room, user, foreign = _run(database_url, rooms)

    async def main() -> list[Any]:
        services = Services.build(settings_for(database_url), pool_size=2, max_overflow=0)
        persister = services.persister
        persister.start()
        try:  # queued before the writer runs: one batch of three
            futures = [
                persister.enqueue(
                    tenant_id=tenant,
                    room_id=room_id,
                    room="r",
                    sender_id=user,
                    sender="ann",
                    body=body,
                )
                for room_id, body in ((room, "kept"), (foreign, "lost"), (room, "kept too"))
            ]
            return await asyncio.gather(*futures, return_exceptions=True)
        finally:
            await services.stop()

    kept, lost, kept_too = asyncio.run(main())
    assert isinstance(lost, RoomNotFound)
    assert (kept[0].message.seq, kept[0].message.body, kept[1]) == (1, "kept", True)
    assert (kept_too[0].message.seq, kept_too[0].message.body) == (2, "kept too")


def test_the_webhook_message_object_is_the_wire_message_object(database_url: str) -> None:
    """`switchboard_message_json` writes the message object of both `message.created` and
    `message.unseen`: the same fields and formats as a `message` frame."""
    ts = datetime(2026, 12, 3, 19, 0, 0, 123456, tzinfo=UTC)
    rows = [
        MessageRow("general", 3, "ann", "héllo ☃", ts, "user", None),
        MessageRow("general", 4, "ann", "again", ts, "user", "c-1"),
    ]

    async def work(conn: Any) -> list[Any]:
        return [
            json.loads(
                await conn.fetchval(
                    "SELECT switchboard_message_json($1, $2, $3, $4, $5, $6, $7)::text",
                    m.room,
                    m.seq,
                    m.sender,
                    m.body,
                    m.ts,
                    m.kind,
                    m.client_msg_id,
                )
            )
            for m in rows
        ]

    assert _run(database_url, work) == [frames.message_dict(m) for m in rows]
