"""Rooms and their members."""

from __future__ import annotations

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from api.repository.base import Repo, member_t, room_t
from api.repository.rows import RoomRow, RoomWithMembers, room_row


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

    async def by_name(self, name: str) -> RoomRow | None:
        row = (
            await self.conn.execute(
                select(room_t).where(room_t.c.tenant_id == self.tenant_id, room_t.c.name == name)
            )
        ).one_or_none()
        return room_row(row) if row else None

    async def last_seq(self, room_id: int) -> int:
        found = await self.conn.execute(
            select(room_t.c.last_seq).where(
                room_t.c.tenant_id == self.tenant_id, room_t.c.id == room_id
            )
        )
        return int(found.scalar_one())

    async def visible_to(self, user_id: int) -> list[RoomRow]:
        """Public rooms, and private ones the user is a member of."""
        is_member = (
            select(member_t.c.room_id)
            .where(
                member_t.c.tenant_id == self.tenant_id,
                member_t.c.room_id == room_t.c.id,
                member_t.c.user_id == user_id,
            )
            .exists()
        )
        rows = await self.conn.execute(
            select(room_t)
            .where(
                room_t.c.tenant_id == self.tenant_id, or_(room_t.c.private.is_(False), is_member)
            )
            .order_by(room_t.c.name)
        )
        return [room_row(r) for r in rows]

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
