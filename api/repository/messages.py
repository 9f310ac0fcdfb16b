"""Reading a room's messages: history pages, replay ranges, one message."""

from __future__ import annotations

from sqlalchemy import and_, select

from api.repository.base import Repo, message_t, room_t
from api.repository.rows import MessagePage, MessageRow, RoomRow, message_row


class MessageRepo(Repo):
    async def page(
        self, room: RoomRow, *, after: int | None, before: int | None, limit: int
    ) -> MessagePage:
        """Keyset pages on (room_id, seq): one index range scan of `limit + 1` rows."""
        m = message_t
        q = select(m).where(m.c.tenant_id == self.tenant_id, m.c.room_id == room.id)
        if after is not None:
            q = q.where(m.c.seq > after)
        if before is not None:
            q = q.where(m.c.seq < before)
        ascending = after is not None
        q = q.order_by(m.c.seq.asc() if ascending else m.c.seq.desc()).limit(limit + 1)
        rows = list((await self.conn.execute(q)).mappings())
        has_more = len(rows) > limit
        rows = rows[:limit]
        if not ascending:
            rows.reverse()
        return MessagePage([message_row(room.name, r) for r in rows], has_more)

    async def between(
        self, room_id: int, room_name: str, after: int, upto: int, limit: int
    ) -> list[MessageRow]:
        """Messages with after < seq <= upto, in order, at most `limit` of them."""
        m = message_t
        rows = await self.conn.execute(
            select(m)
            .where(
                m.c.tenant_id == self.tenant_id,
                m.c.room_id == room_id,
                m.c.seq > after,
                m.c.seq <= upto,
            )
            .order_by(m.c.seq)
            .limit(limit)
        )
        return [message_row(room_name, r) for r in rows.mappings()]

    async def at(self, room_id: int, seq: int) -> MessageRow | None:
        row = (
            (
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
                        message_t.c.tenant_id == self.tenant_id,
                        message_t.c.room_id == room_id,
                        message_t.c.seq == seq,
                    )
                )
            )
            .mappings()
            .one_or_none()
        )
        return message_row(row["room_name"], row) if row else None
