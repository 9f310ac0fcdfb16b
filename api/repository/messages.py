"""A room's entries: history pages, replay ranges, one entry, and edits and deletions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, insert, select, update

from api.repository.base import Repo, message_t, room_t
from api.repository.rows import MessageKind, MessagePage, MessageRow, RoomRow, message_row


@dataclass(frozen=True, slots=True)
class AmendTarget:
    """The entry an edit or a deletion acts on, locked until the transaction ends."""

    seq: int
    sender_id: int | None
    kind: MessageKind
    deleted: bool


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

    # edits and deletions --------------------------------------------------------
    async def lock_for_amend(self, room_id: int, seq: int) -> AmendTarget | None:
        """Lock the room (as the persister does: its seq is about to advance) and the entry
        at `seq`; None when there is no such entry (never stored, or pruned)."""
        await self.conn.execute(
            select(room_t.c.id)
            .where(room_t.c.tenant_id == self.tenant_id, room_t.c.id == room_id)
            .with_for_update()
        )
        m = message_t
        row = (
            await self.conn.execute(
                select(m.c.sender_id, m.c.kind, m.c.deleted_at)
                .where(m.c.tenant_id == self.tenant_id, m.c.room_id == room_id, m.c.seq == seq)
                .with_for_update()
            )
        ).one_or_none()
        if row is None:
            return None
        return AmendTarget(seq, row.sender_id, MessageKind(row.kind), row.deleted_at is not None)

    async def append_entry(
        self,
        room: RoomRow,
        *,
        kind: MessageKind,
        target: int,
        sender_id: int,
        sender: str,
        body: str,
        ts: datetime,
    ) -> MessageRow:
        """The next seq of a locked room, as an `edit` or `delete` entry."""
        seq = (
            await self.conn.execute(
                update(room_t)
                .where(room_t.c.tenant_id == self.tenant_id, room_t.c.id == room.id)
                .values(last_seq=room_t.c.last_seq + 1)
                .returning(room_t.c.last_seq)
            )
        ).scalar_one()
        await self.conn.execute(
            insert(message_t).values(
                tenant_id=self.tenant_id,
                room_id=room.id,
                seq=seq,
                sender_id=sender_id,
                sender=sender,
                body=body,
                kind=kind.value,
                target=target,
                created_at=ts,
            )
        )
        return MessageRow(room.name, seq, sender, body, ts, kind.value, None, target)

    async def set_body(self, room_id: int, seq: int, body: str, ts: datetime) -> None:
        m = message_t
        await self.conn.execute(
            update(m)
            .where(m.c.tenant_id == self.tenant_id, m.c.room_id == room_id, m.c.seq == seq)
            .values(body=body, edited_at=ts)
        )

    async def erase(self, room_id: int, seq: int, ts: datetime) -> None:
        """Erase a message's text, and its edits' text: UPDATE, not a flag, so the text is
        gone from every row a query (or pg_dump) can read."""
        m = message_t
        await self.conn.execute(
            update(m)
            .where(m.c.tenant_id == self.tenant_id, m.c.room_id == room_id, m.c.seq == seq)
            .values(body="", deleted_at=ts)
        )
        await self.conn.execute(
            update(m)
            .where(
                m.c.tenant_id == self.tenant_id,
                m.c.room_id == room_id,
                m.c.target == seq,
                m.c.kind == MessageKind.EDIT.value,
            )
            .values(body="")
        )
