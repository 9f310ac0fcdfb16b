"""Every SQL statement of the application. Each method takes the tenant it acts for;
a transaction is opened with `Database.tx(tenant_id)`, which also stamps the tenant on the
connection for row-level security."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.models import (
    Broadcast,
    IdempotencyKey,
    LoginThrottle,
    Membership,
    Message,
    Room,
    Session,
    Tenant,
    User,
    WsTicket,
)

tenant_t = cast(Table, Tenant.__table__)
user_t = cast(Table, User.__table__)
session_t = cast(Table, Session.__table__)
ticket_t = cast(Table, WsTicket.__table__)
throttle_t = cast(Table, LoginThrottle.__table__)
room_t = cast(Table, Room.__table__)
member_t = cast(Table, Membership.__table__)
message_t = cast(Table, Message.__table__)
broadcast_t = cast(Table, Broadcast.__table__)
idem_t = cast(Table, IdempotencyKey.__table__)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    tenant_id: int
    username: str
    role: str
    password_hash: str
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session joined with its user and tenant: everything a Principal needs."""

    session_id: uuid.UUID
    tenant_id: int
    tenant_slug: str
    user_id: int
    username: str
    role: str
    live: bool


@dataclass(frozen=True, slots=True)
class RoomRow:
    id: int
    tenant_id: int
    name: str
    private: bool
    created_by: int | None
    created_at: datetime
    last_seq: int


@dataclass(frozen=True, slots=True)
class BroadcastRow:
    id: int
    sender: str
    body: str
    ts: datetime
    rooms: list[str] | None


@dataclass(frozen=True, slots=True)
class MessageRow:
    room: str
    seq: int
    sender: str
    body: str
    ts: datetime
    kind: str
    client_msg_id: str | None


class Repository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def set_tenant(self, tenant_id: int) -> None:
        """Stamp the transaction with its tenant (the key of the row-level security policies)."""
        await self.conn.execute(select(func.set_config("app.tenant_id", str(tenant_id), True)))

    # tenants ---------------------------------------------------------------
    async def create_tenant(self, slug: str, name: str) -> int:
        return int(
            (
                await self.conn.execute(
                    insert(tenant_t).values(slug=slug, name=name).returning(tenant_t.c.id)
                )
            ).scalar_one()
        )

    async def tenant_id_by_slug(self, slug: str) -> int | None:
        row = await self.conn.execute(select(tenant_t.c.id).where(tenant_t.c.slug == slug))
        return row.scalar_one_or_none()

    # users -----------------------------------------------------------------
    async def create_user(
        self, tenant_id: int, username: str, password_hash: str, role: str
    ) -> UserRow:
        return _user(
            (
                await self.conn.execute(
                    insert(user_t)
                    .values(
                        tenant_id=tenant_id,
                        username=username,
                        password_hash=password_hash,
                        role=role,
                    )
                    .returning(*user_t.c)
                )
            ).one()
        )

    async def user_by_name(self, tenant_id: int, username: str) -> UserRow | None:
        row = (
            await self.conn.execute(
                select(user_t).where(user_t.c.tenant_id == tenant_id, user_t.c.username == username)
            )
        ).one_or_none()
        return _user(row) if row else None

    async def list_users(self, tenant_id: int) -> list[UserRow]:
        rows = await self.conn.execute(
            select(user_t).where(user_t.c.tenant_id == tenant_id).order_by(user_t.c.username)
        )
        return [_user(r) for r in rows]

    async def set_password_hash(self, tenant_id: int, user_id: int, password_hash: str) -> None:
        await self.conn.execute(
            update(user_t)
            .where(user_t.c.tenant_id == tenant_id, user_t.c.id == user_id)
            .values(password_hash=password_hash)
        )

    async def disable_user(self, tenant_id: int, username: str) -> int | None:
        row = await self.conn.execute(
            update(user_t)
            .where(user_t.c.tenant_id == tenant_id, user_t.c.username == username)
            .values(disabled_at=func.coalesce(user_t.c.disabled_at, func.now()))
            .returning(user_t.c.id)
        )
        return row.scalar_one_or_none()

    # sessions --------------------------------------------------------------
    async def create_session(
        self,
        tenant_id: int,
        user_id: int,
        session_id: uuid.UUID,
        refresh_hash: bytes,
        cookie_hash: bytes,
        ttl_seconds: int,
    ) -> None:
        await self.conn.execute(
            insert(session_t).values(
                id=session_id,
                tenant_id=tenant_id,
                user_id=user_id,
                refresh_hash=refresh_hash,
                cookie_hash=cookie_hash,
                expires_at=func.now() + _seconds(ttl_seconds),
            )
        )

    async def session_view(self, tenant_id: int, session_id: uuid.UUID) -> SessionView | None:
        row = (
            (await self.conn.execute(_SESSION_VIEW, {"t": tenant_id, "s": session_id}))
            .mappings()
            .one_or_none()
        )
        return _session_view(row) if row else None

    async def session_secret_hashes(
        self, tenant_id: int, session_id: uuid.UUID
    ) -> tuple[bytes, bytes] | None:
        row = (
            await self.conn.execute(
                select(session_t.c.refresh_hash, session_t.c.cookie_hash)
                .where(session_t.c.tenant_id == tenant_id, session_t.c.id == session_id)
                .with_for_update()
            )
        ).one_or_none()
        return (row.refresh_hash, row.cookie_hash) if row else None

    async def rotate_refresh(
        self, tenant_id: int, session_id: uuid.UUID, new_hash: bytes, ttl_seconds: int
    ) -> None:
        await self.conn.execute(
            update(session_t)
            .where(session_t.c.tenant_id == tenant_id, session_t.c.id == session_id)
            .values(refresh_hash=new_hash, expires_at=func.now() + _seconds(ttl_seconds))
        )

    async def revoke_session(self, tenant_id: int, session_id: uuid.UUID) -> None:
        await self.conn.execute(
            update(session_t)
            .where(
                session_t.c.tenant_id == tenant_id,
                session_t.c.id == session_id,
                session_t.c.revoked_at.is_(None),
            )
            .values(revoked_at=func.now())
        )

    async def revoke_user_sessions(self, tenant_id: int, user_id: int) -> list[uuid.UUID]:
        rows = await self.conn.execute(
            update(session_t)
            .where(
                session_t.c.tenant_id == tenant_id,
                session_t.c.user_id == user_id,
                session_t.c.revoked_at.is_(None),
            )
            .values(revoked_at=func.now())
            .returning(session_t.c.id)
        )
        return list(rows.scalars())

    # ws tickets ------------------------------------------------------------
    async def create_ticket(
        self, tenant_id: int, session_id: uuid.UUID, token_hash: bytes, ttl_seconds: int
    ) -> None:
        await self.conn.execute(
            insert(ticket_t).values(
                token_hash=token_hash,
                tenant_id=tenant_id,
                session_id=session_id,
                expires_at=func.now() + _seconds(ttl_seconds),
            )
        )
        await self.conn.execute(
            delete(ticket_t).where(
                ticket_t.c.tenant_id == tenant_id,
                ticket_t.c.expires_at < func.now() - _seconds(3600),
            )
        )

    async def redeem_ticket(
        self, tenant_id: int, token_hash: bytes
    ) -> tuple[uuid.UUID, bool] | None:
        """Marks the ticket used; returns (session, still_fresh), or None if unknown or used."""
        row = (
            await self.conn.execute(
                update(ticket_t)
                .where(
                    ticket_t.c.tenant_id == tenant_id,
                    ticket_t.c.token_hash == token_hash,
                    ticket_t.c.used_at.is_(None),
                )
                .values(used_at=func.now())
                .returning(
                    ticket_t.c.session_id, (ticket_t.c.expires_at > func.now()).label("fresh")
                )
            )
        ).one_or_none()
        return (row.session_id, bool(row.fresh)) if row else None

    # login throttle (not tenant-owned: keyed by name and by address) -------
    async def throttle_retry_after(
        self, keys: Sequence[str], limits: Sequence[int], window_seconds: int
    ) -> float:
        """Seconds until the most-limited key may try again (0 when none is locked)."""
        rows = await self.conn.execute(
            select(
                throttle_t.c.key,
                throttle_t.c.failures,
                func.extract(
                    "epoch", throttle_t.c.window_start + _seconds(window_seconds) - func.now()
                ).label("left"),
            ).where(throttle_t.c.key.in_(list(keys)))
        )
        limit_of = dict(zip(keys, limits, strict=True))
        waits = [float(r.left) for r in rows if r.failures >= limit_of[r.key] and r.left > 0]
        return max(waits, default=0.0)

    async def record_login_failure(self, keys: Sequence[str], window_seconds: int) -> None:
        await self.conn.execute(_RECORD_FAILURE, {"keys": list(keys), "w": window_seconds})

    async def clear_login_failures(self, key: str) -> None:
        await self.conn.execute(delete(throttle_t).where(throttle_t.c.key == key))

    # rooms -----------------------------------------------------------------
    async def create_room(
        self, tenant_id: int, name: str, private: bool, created_by: int | None
    ) -> RoomRow | None:
        """None when the name is taken in this tenant."""
        row = (
            await self.conn.execute(
                pg_insert(room_t)
                .values(tenant_id=tenant_id, name=name, private=private, created_by=created_by)
                .on_conflict_do_nothing(index_elements=[room_t.c.tenant_id, room_t.c.name])
                .returning(*room_t.c)
            )
        ).one_or_none()
        if row is not None and private and created_by is not None:
            await self.add_member(tenant_id, row.id, created_by)
        return _room(row) if row else None

    async def room_by_name(self, tenant_id: int, name: str) -> RoomRow | None:
        row = (
            await self.conn.execute(
                select(room_t).where(room_t.c.tenant_id == tenant_id, room_t.c.name == name)
            )
        ).one_or_none()
        return _room(row) if row else None

    async def room_last_seq(self, tenant_id: int, room_id: int) -> int:
        return int(
            (
                await self.conn.execute(
                    select(room_t.c.last_seq).where(
                        room_t.c.tenant_id == tenant_id, room_t.c.id == room_id
                    )
                )
            ).scalar_one()
        )

    async def visible_rooms(self, tenant_id: int, user_id: int) -> list[RoomRow]:
        is_member = (
            select(member_t.c.room_id)
            .where(
                member_t.c.tenant_id == tenant_id,
                member_t.c.room_id == room_t.c.id,
                member_t.c.user_id == user_id,
            )
            .exists()
        )
        rows = await self.conn.execute(
            select(room_t)
            .where(room_t.c.tenant_id == tenant_id, or_(room_t.c.private.is_(False), is_member))
            .order_by(room_t.c.name)
        )
        return [_room(r) for r in rows]

    async def is_member(self, tenant_id: int, room_id: int, user_id: int) -> bool:
        row = await self.conn.execute(
            select(member_t.c.user_id).where(
                member_t.c.tenant_id == tenant_id,
                member_t.c.room_id == room_id,
                member_t.c.user_id == user_id,
            )
        )
        return row.first() is not None

    async def remove_member(self, tenant_id: int, room_id: int, user_id: int) -> bool:
        result = await self.conn.execute(
            delete(member_t).where(
                member_t.c.tenant_id == tenant_id,
                member_t.c.room_id == room_id,
                member_t.c.user_id == user_id,
            )
        )
        return bool(result.rowcount)

    async def rooms_with_member_counts(self, tenant_id: int) -> list[tuple[RoomRow, int]]:
        members = (
            select(func.count())
            .select_from(member_t)
            .where(member_t.c.tenant_id == room_t.c.tenant_id, member_t.c.room_id == room_t.c.id)
            .scalar_subquery()
        )
        rows = await self.conn.execute(
            select(room_t, members.label("members"))
            .where(room_t.c.tenant_id == tenant_id)
            .order_by(room_t.c.name)
        )
        return [(_room(r), int(r.members)) for r in rows]

    async def add_member(self, tenant_id: int, room_id: int, user_id: int) -> None:
        await self.conn.execute(
            pg_insert(member_t)
            .values(tenant_id=tenant_id, room_id=room_id, user_id=user_id)
            .on_conflict_do_nothing()
        )

    # messages --------------------------------------------------------------
    async def history(
        self, tenant_id: int, room: RoomRow, *, after: int | None, before: int | None, limit: int
    ) -> tuple[list[MessageRow], bool]:
        """Keyset pages on (room_id, seq): one index range scan of `limit + 1` rows."""
        m = message_t
        q = select(m).where(m.c.tenant_id == tenant_id, m.c.room_id == room.id)
        if after is not None:
            q = q.where(m.c.seq > after)
        if before is not None:
            q = q.where(m.c.seq < before)
        ascending = after is not None
        q = q.order_by(m.c.seq.asc() if ascending else m.c.seq.desc()).limit(limit + 1)
        rows = list(await self.conn.execute(q))
        has_more = len(rows) > limit
        rows = rows[:limit]
        if not ascending:
            rows.reverse()
        return [_message(room.name, r) for r in rows], has_more

    async def messages_between(
        self, tenant_id: int, room_id: int, room_name: str, after: int, upto: int, limit: int
    ) -> list[MessageRow]:
        m = message_t
        rows = await self.conn.execute(
            select(m)
            .where(
                m.c.tenant_id == tenant_id, m.c.room_id == room_id, m.c.seq > after, m.c.seq <= upto
            )
            .order_by(m.c.seq)
            .limit(limit)
        )
        return [_message(room_name, r) for r in rows]

    # broadcasts ------------------------------------------------------------------
    async def create_broadcast(
        self, tenant_id: int, sender: str, body: str, rooms: list[str] | None
    ) -> BroadcastRow:
        row = (
            await self.conn.execute(
                insert(broadcast_t)
                .values(tenant_id=tenant_id, sender=sender, body=body, rooms=rooms)
                .returning(*broadcast_t.c)
            )
        ).one()
        return _broadcast(row)

    async def broadcast(self, tenant_id: int, broadcast_id: int) -> BroadcastRow | None:
        row = (
            await self.conn.execute(
                select(broadcast_t).where(
                    broadcast_t.c.tenant_id == tenant_id, broadcast_t.c.id == broadcast_id
                )
            )
        ).one_or_none()
        return _broadcast(row) if row else None

    async def tenant_broadcasts(
        self, tenant_id: int, after: int, limit: int
    ) -> tuple[list[BroadcastRow], bool]:
        """Tenant-wide broadcasts (not room ones: those live in each room's history)."""
        rows = list(
            await self.conn.execute(
                select(broadcast_t)
                .where(
                    broadcast_t.c.tenant_id == tenant_id,
                    broadcast_t.c.id > after,
                    broadcast_t.c.rooms.is_(None),
                )
                .order_by(broadcast_t.c.id)
                .limit(limit + 1)
            )
        )
        return [_broadcast(r) for r in rows[:limit]], len(rows) > limit

    async def message_at(self, tenant_id: int, room_id: int, seq: int) -> MessageRow | None:
        row = (
            await self.conn.execute(
                select(message_t, room_t.c.name.label("room_name"))
                .join(
                    room_t,
                    and_(
                        room_t.c.tenant_id == message_t.c.tenant_id,
                        room_t.c.id == message_t.c.room_id,
                    ),
                )
                .where(
                    message_t.c.tenant_id == tenant_id,
                    message_t.c.room_id == room_id,
                    message_t.c.seq == seq,
                )
            )
        ).one_or_none()
        return _message(row.room_name, row) if row else None

    # idempotency keys --------------------------------------------------------------
    async def claim_idempotency(
        self, tenant_id: int, scope: str, key: str
    ) -> tuple[str, dict[str, Any] | None]:
        """("claimed", None) for a new key; ("done", answer) for a key answered within 24 h;
        ("busy", None) while another request holds it (claims older than 60 s expire)."""
        claimed = (
            await self.conn.execute(_CLAIM_KEY, {"t": tenant_id, "s": scope, "k": key})
        ).first()
        if claimed is not None:
            return "claimed", None
        response = (
            await self.conn.execute(
                select(idem_t.c.response).where(
                    idem_t.c.tenant_id == tenant_id, idem_t.c.scope == scope, idem_t.c.key == key
                )
            )
        ).scalar_one_or_none()
        return ("done", response) if response is not None else ("busy", None)

    async def answer_idempotency(
        self, tenant_id: int, scope: str, key: str, response: dict[str, Any]
    ) -> None:
        await self.conn.execute(
            update(idem_t)
            .where(idem_t.c.tenant_id == tenant_id, idem_t.c.scope == scope, idem_t.c.key == key)
            .values(response=response)
        )

    async def release_idempotency(self, tenant_id: int, scope: str, key: str) -> None:
        await self.conn.execute(
            delete(idem_t).where(
                idem_t.c.tenant_id == tenant_id,
                idem_t.c.scope == scope,
                idem_t.c.key == key,
                idem_t.c.response.is_(None),
            )
        )


_CLAIM_KEY = text("""
    INSERT INTO idempotency_key (tenant_id, scope, key, response, created_at)
    VALUES (:t, :s, :k, NULL, now())
    ON CONFLICT (tenant_id, scope, key) DO UPDATE SET response = NULL, created_at = now()
      WHERE idempotency_key.created_at < now() - interval '24 hours'
         OR (idempotency_key.response IS NULL
             AND idempotency_key.created_at < now() - interval '60 seconds')
    RETURNING 1
""")

_RECORD_FAILURE = text("""
    INSERT INTO login_throttle (key, failures, window_start)
    SELECT k, 1, now() FROM unnest(CAST(:keys AS text[])) AS k
    ON CONFLICT (key) DO UPDATE SET
      failures = CASE WHEN login_throttle.window_start + make_interval(secs => :w) < now()
                      THEN 1 ELSE login_throttle.failures + 1 END,
      window_start = CASE WHEN login_throttle.window_start + make_interval(secs => :w) < now()
                          THEN now() ELSE login_throttle.window_start END
""")


def _seconds(n: float) -> Any:
    return func.make_interval(0, 0, 0, 0, 0, 0, n)


def _user(row: Any) -> UserRow:
    return UserRow(
        row.id,
        row.tenant_id,
        row.username,
        row.role,
        row.password_hash,
        row.disabled_at is not None,
        row.created_at,
    )


# The session check lives in one SQL function (migration c3d5e7f9a1b2).
_SESSION_VIEW = text("SELECT * FROM switchboard_session_view(:t, :s)")


def _session_view(row: Any) -> SessionView:
    return SessionView(
        row["id"],
        row["tenant_id"],
        row["slug"],
        row["uid"],
        row["username"],
        row["role"],
        bool(row["live"]),
    )


def _broadcast(row: Any) -> BroadcastRow:
    return BroadcastRow(row.id, row.sender, row.body, row.created_at, row.rooms)


def _room(row: Any) -> RoomRow:
    return RoomRow(
        row.id, row.tenant_id, row.name, row.private, row.created_by, row.created_at, row.last_seq
    )


def _message(room_name: str, row: Any) -> MessageRow:
    return MessageRow(
        room_name, row.seq, row.sender, row.body, row.created_at, row.kind, row.client_msg_id
    )


_APPEND = """
WITH msgs AS (
    SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                         $7::text[]) WITH ORDINALITY
        AS m(room_id, sender_id, sender, body, kind, client_msg_id, ord)
), counts AS (
    SELECT room_id, count(*) AS k FROM msgs GROUP BY room_id
), bumped AS (
    UPDATE room SET last_seq = room.last_seq + counts.k FROM counts
    WHERE room.tenant_id = $1 AND room.id = counts.room_id
    RETURNING room.id, room.last_seq - counts.k AS base
), inserted AS (
    INSERT INTO message (tenant_id, room_id, seq, sender_id, sender, body, kind,
                         client_msg_id, created_at)
    SELECT $1, m.room_id,
           b.base + row_number() OVER (PARTITION BY m.room_id ORDER BY m.ord),
           m.sender_id, m.sender, m.body, m.kind, m.client_msg_id, $8
    FROM msgs m JOIN bumped b ON b.id = m.room_id
)
SELECT id, base FROM bumped
"""

_EXISTING = """
SELECT m.sender_id, m.client_msg_id, m.room_id, m.seq, m.sender, m.body, m.kind,
       m.created_at, r.name AS room_name
FROM message m JOIN room r ON r.tenant_id = m.tenant_id AND r.id = m.room_id
WHERE m.tenant_id = $1 AND (m.sender_id, m.client_msg_id) IN
      (SELECT * FROM unnest($2::bigint[], $3::text[]))
"""


class MessageStore:
    """The persister's hot path, on the raw asyncpg connection: a batch costs one script
    (BEGIN, tenant stamp, row locks in id order), one statement per tenant that advances
    each room's last_seq and inserts every row, and COMMIT."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn  # asyncpg.Connection

    async def begin(self) -> None:
        await self.conn.execute("BEGIN")

    async def lock_rooms(self, tenant_id: int, room_ids: Sequence[int]) -> None:
        """Stamp the tenant and lock its rooms in id order (so writers never deadlock).
        Only integers are inlined: one simple-protocol round trip."""
        ids = ",".join(str(int(r)) for r in sorted(set(room_ids)))
        tid = int(tenant_id)
        await self.conn.execute(
            f"SELECT set_config('app.tenant_id', '{tid}', true); "
            f"SELECT id FROM room WHERE tenant_id = {tid} AND id IN ({ids}) "
            "ORDER BY id FOR UPDATE"
        )

    async def existing(
        self, tenant_id: int, keys: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], Any]:
        rows = await self.conn.fetch(
            _EXISTING, tenant_id, [k[0] for k in keys], [k[1] for k in keys]
        )
        return {(r["sender_id"], r["client_msg_id"]): r for r in rows}

    async def append(
        self, tenant_id: int, rows: Sequence[tuple[Any, ...]], ts: datetime
    ) -> dict[int, int]:
        """rows: (room_id, sender_id, sender, body, kind, client_msg_id) in send order.
        Returns each room's seq before this batch; the batch takes the next ones in order."""
        columns = list(zip(*rows, strict=True))
        result = await self.conn.fetch(_APPEND, tenant_id, *columns, ts)
        return {r["id"]: r["base"] for r in result}

    async def commit(self) -> None:
        await self.conn.execute("COMMIT")

    async def rollback(self) -> None:
        await self.conn.execute("ROLLBACK")


class Database:
    """Owns the engine; hands out repositories bound to one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def tx(self, tenant_id: int | None = None) -> AsyncIterator[Repository]:
        async with self.engine.begin() as conn:
            repo = Repository(conn)
            if tenant_id is not None:
                await repo.set_tenant(tenant_id)
            yield repo

    async def isolation_problems(self) -> list[str]:
        """Why row-level security would NOT apply to this application's queries, if at all."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT r.rolname, r.rolsuper, r.rolbypassrls, EXISTS (SELECT 1 FROM pg_tables "
                        "WHERE schemaname = 'public' AND tableowner = current_user) AS owns "
                        "FROM pg_roles r WHERE r.rolname = current_user"
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

    async def session_view(self, tenant_id: int, session_id: uuid.UUID) -> SessionView | None:
        """The session check behind every request and socket: one round trip."""
        async with self.raw() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM switchboard_session_view($1, $2)", tenant_id, session_id
            )
        return _session_view(row) if row else None

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
