"""Rooms and their members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from api.repository.base import Repo, member_t, room_t
from api.repository.reads import unread_sql
from api.repository.rows import ReadState, RoomRow, RoomWithMembers, room_row

# What a join needs, in one statement: the room, whether the user is a member, and the
# user's read state in it. Run by `fetch_join_view` on a raw connection in a tenant's
# transaction (api.db.Database.raw_tx).
_JOIN_VIEW = f"""
SELECT r.*, coalesce(rp.last_read, 0) AS last_read, ({unread_sql("$4")}) AS unread,
       EXISTS (SELECT 1 FROM membership me
               WHERE me.tenant_id = r.tenant_id AND me.room_id = r.id AND me.user_id = $3)
           AS is_member
FROM room r
LEFT JOIN read_position rp
       ON rp.tenant_id = r.tenant_id AND rp.room_id = r.id AND rp.user_id = $3
WHERE r.tenant_id = $1 AND r.name = $2
"""


@dataclass(frozen=True, slots=True)
class JoinView:
    room: RoomRow
    read: ReadState
    is_member: bool


async def fetch_join_view(
    raw: Any, tenant_id: int, name: str, user_id: int, unread_cap: int
) -> JoinView | None:
    """`raw` is an asyncpg connection in a transaction stamped for `tenant_id`."""
    row = await raw.fetchrow(_JOIN_VIEW, tenant_id, name, user_id, unread_cap)
    if row is None:
        return None
    return JoinView(room_row(row), ReadState(row["last_read"], row["unread"]), row["is_member"])


def dm_key(user_id: int, other_id: int) -> str:
    """The same key whichever of the two asks."""
    low, high = sorted((user_id, other_id))
    return f"{low}:{high}"


class RoomRepo(Repo):
    async def create(self, name: str, private: bool, created_by: int | None) -> RoomRow | None:
        """None when the name is taken in this tenant. A private room's creator is its
        first member."""
        row = (
            await self.conn.execute(
                pg_insert(room_t)
                .values(tenant_id=self.tenant_id, name=name, private=private, created_by=created_by)
                .on_conflict_do_nothing(index_elements=[room_t.c.tenant_id, room_t.c.name])
                .returning(*room_t.c)
            )
        ).one_or_none()
        if row is not None and private and created_by is not None:
            await self.add_member(row.id, created_by)
        return room_row(row) if row else None

    async def create_direct(
        self, name: str, user_id: int, other_id: int
    ) -> tuple[RoomRow, bool] | None:
        """The direct room of two users: (room, created). Two simultaneous calls for one pair
        meet at the (tenant_id, dm_key) constraint, and the second finds the first's room.
        None when `name` is taken by another room (the caller picks another name)."""
        key = dm_key(user_id, other_id)
        row = (
            await self.conn.execute(
                pg_insert(room_t)
                .values(
                    tenant_id=self.tenant_id,
                    name=name,
                    private=True,
                    created_by=user_id,
                    dm_key=key,
                )
                .on_conflict_do_nothing()
                .returning(*room_t.c)
            )
        ).one_or_none()
        if row is not None:
            await self.add_member(row.id, user_id)
            await self.add_member(row.id, other_id)
            return room_row(row), True
        found = (
            await self.conn.execute(
                select(room_t).where(room_t.c.tenant_id == self.tenant_id, room_t.c.dm_key == key)
            )
        ).one_or_none()
        return (room_row(found), False) if found else None

    async def set_retention(self, room_id: int, days: int | None) -> RoomRow:
        row = (
            await self.conn.execute(
                update(room_t)
                .where(room_t.c.tenant_id == self.tenant_id, room_t.c.id == room_id)
                .values(retention_days=days)
                .returning(*room_t.c)
            )
        ).one()
        return room_row(row)

    async def by_name(self, name: str) -> RoomRow | None:
        row = (
            await self.conn.execute(
                select(room_t).where(room_t.c.tenant_id == self.tenant_id, room_t.c.name == name)
            )
        ).one_or_none()
        return room_row(row) if row else None

    async def by_names(self, names: list[str]) -> dict[str, RoomRow]:
        rows = await self.conn.execute(
            select(room_t).where(room_t.c.tenant_id == self.tenant_id, room_t.c.name.in_(names))
        )
        return {r.name: room_row(r) for r in rows}

    async def last_seq(self, room_id: int) -> int:
        found = await self.conn.execute(
            select(room_t.c.last_seq).where(
                room_t.c.tenant_id == self.tenant_id, room_t.c.id == room_id
            )
        )
        return int(found.scalar_one())

    async def with_member_counts(self) -> list[RoomWithMembers]:
        members = (
            select(func.count())
            .select_from(member_t)
            .where(member_t.c.tenant_id == room_t.c.tenant_id, member_t.c.room_id == room_t.c.id)
            .scalar_subquery()
        )
        rows = await self.conn.execute(
            select(room_t, members.label("members"))
            .where(room_t.c.tenant_id == self.tenant_id)
            .order_by(room_t.c.name)
        )
        return [RoomWithMembers(room_row(r), int(r.members)) for r in rows]

    async def is_member(self, room_id: int, user_id: int) -> bool:
        row = await self.conn.execute(
            select(member_t.c.user_id).where(
                member_t.c.tenant_id == self.tenant_id,
                member_t.c.room_id == room_id,
                member_t.c.user_id == user_id,
            )
        )
        return row.first() is not None

    async def add_member(self, room_id: int, user_id: int) -> None:
        await self.conn.execute(
            pg_insert(member_t)
            .values(tenant_id=self.tenant_id, room_id=room_id, user_id=user_id)
            .on_conflict_do_nothing()
        )

    async def remove_member(self, room_id: int, user_id: int) -> bool:
        result = await self.conn.execute(
            delete(member_t).where(
                member_t.c.tenant_id == self.tenant_id,
                member_t.c.room_id == room_id,
                member_t.c.user_id == user_id,
            )
        )
        return bool(result.rowcount)
