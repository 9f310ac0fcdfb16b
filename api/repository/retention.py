"""Pruning old entries: small batches from the front of a room's seq stream.

Only a prefix of the stream is ever deleted, so `first_seq` (the oldest kept) describes what
is left exactly; seqs are never reused because `last_seq` never moves back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update

from api.repository.base import Repo, message_t, room_t


@dataclass(frozen=True, slots=True)
class RoomRetention:
    room_id: int
    days: int  # > 0


class RetentionRepo(Repo):
    async def rooms_with_retention(self, default_days: int) -> list[RoomRetention]:
        days = func.coalesce(room_t.c.retention_days, default_days)
        rows = await self.conn.execute(
            select(room_t.c.id, days.label("days")).where(
                room_t.c.tenant_id == self.tenant_id, days > 0
            )
        )
        return [RoomRetention(r.id, r.days) for r in rows]

    async def prune_batch(self, room_id: int, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` entries older than `cutoff` from the front of the room; the
        number deleted (0: nothing left to prune)."""
        m = message_t
        oldest = await self.conn.execute(
            select(m.c.seq, m.c.created_at)
            .where(m.c.tenant_id == self.tenant_id, m.c.room_id == room_id)
            .order_by(m.c.seq)
            .limit(limit)
        )
        upto = None
        for row in oldest:
            if row.created_at >= cutoff:
                break  # stop at the first entry to keep: only a prefix goes
            upto = row.seq
        if upto is None:
            return 0
        gone = await self.conn.execute(
            delete(m).where(
                m.c.tenant_id == self.tenant_id, m.c.room_id == room_id, m.c.seq <= upto
            )
        )
        await self.conn.execute(
            update(room_t)
            .where(room_t.c.tenant_id == self.tenant_id, room_t.c.id == room_id)
            .values(first_seq=func.greatest(room_t.c.first_seq, upto + 1))
        )
        return int(gone.rowcount)
