"""Broadcasts (the record of every announcement; room ones are also room messages)."""

from __future__ import annotations

from sqlalchemy import insert, select

from api.repository.base import Repo, broadcast_t
from api.repository.rows import BroadcastPage, BroadcastRow, broadcast_row


class BroadcastRepo(Repo):
    async def create(self, sender: str, body: str, rooms: list[str] | None) -> BroadcastRow:
        row = (
            await self.conn.execute(
                insert(broadcast_t)
                .values(tenant_id=self.tenant_id, sender=sender, body=body, rooms=rooms)
                .returning(*broadcast_t.c)
            )
        ).one()
        return broadcast_row(row)

    async def get(self, broadcast_id: int) -> BroadcastRow | None:
        row = (
            await self.conn.execute(
                select(broadcast_t).where(
                    broadcast_t.c.tenant_id == self.tenant_id, broadcast_t.c.id == broadcast_id
                )
            )
        ).one_or_none()
        return broadcast_row(row) if row else None

    async def tenant_wide_after(self, after: int, limit: int) -> BroadcastPage:
        """Tenant-wide broadcasts (not room ones: those live in each room's history)."""
        rows = list(
            await self.conn.execute(
                select(broadcast_t)
                .where(
                    broadcast_t.c.tenant_id == self.tenant_id,
                    broadcast_t.c.id > after,
                    broadcast_t.c.rooms.is_(None),
                )
                .order_by(broadcast_t.c.id)
                .limit(limit + 1)
            )
        )
        return BroadcastPage([broadcast_row(r) for r in rows[:limit]], len(rows) > limit)
