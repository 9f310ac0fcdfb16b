"""Edits and deletions. Each is the room's next entry (kind `edit`/`delete`, with `target`),
so live delivery, `since` replay, SSE and history carry it in order with everything else;
the target row is updated in the same transaction, so history shows its current state and a
deleted text is gone from the database, its edits' text too."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from api import events
from api.broker import Broker, room_channel
from api.db import Database
from api.errors import Conflict, Forbidden, MessageNotFound
from api.principal import Principal
from api.protocol import server as frames
from api.repository import MessageKind, MessageRow, RoomRow
from api.rooms import RoomService

log = logging.getLogger("switchboard.amendments")
AMENDABLE = (MessageKind.USER, MessageKind.BROADCAST)


class AmendService:
    def __init__(self, db: Database, broker: Broker, rooms: RoomService) -> None:
        self.db = db
        self.broker = broker
        self.rooms = rooms

    async def edit(self, p: Principal, room: RoomRow, seq: int, body: object) -> MessageRow:
        """Only the sender edits, and only a `user` message."""
        text = self.rooms.check_body(body)
        self.rooms.check_rate(p)
        return await self._amend(p, room, seq, MessageKind.EDIT, text)

    async def delete(self, p: Principal, room: RoomRow, seq: int) -> MessageRow:
        """The sender, or an admin of the tenant."""
        self.rooms.check_rate(p)
        return await self._amend(p, room, seq, MessageKind.DELETE, "")

    async def _amend(
        self, p: Principal, room: RoomRow, seq: int, kind: MessageKind, body: str
    ) -> MessageRow:
        now = datetime.now(UTC)
        async with self.db.tx(p.tenant_id) as tx:
            target = await tx.messages.lock_for_amend(room.id, seq)
            if target is None or target.kind not in AMENDABLE:
                raise MessageNotFound(f"room {room.name!r} has no message at seq {seq}")
            own = target.sender_id == p.user_id
            if kind is MessageKind.EDIT and not (own and target.kind is MessageKind.USER):
                raise Forbidden("only its sender can edit a message")
            if kind is MessageKind.DELETE and not (own or p.is_admin):
                raise Forbidden("only its sender or an admin can delete a message")
            if target.deleted:
                raise Conflict(f"the message at seq {seq} is already deleted")
            entry = await tx.messages.append_entry(
                room,
                kind=kind,
                target=seq,
                sender_id=p.user_id,
                sender=p.username,
                body=body,
                ts=now,
            )
            if kind is MessageKind.EDIT:
                await tx.messages.set_body(room.id, seq, body, now)
            else:
                await tx.messages.erase(room.id, seq, now)
            await tx.reads.advance(room.id, p.user_id, entry.seq)  # sending moves it
        try:
            await self.broker.publish(
                room_channel(room.tenant_id, room.id),
                events.message_event(entry.seq, frames.message(entry)),
            )
        except Exception as exc:  # stored is stored: hubs fill the gap from Postgres
            log.warning("publishing a stored %s failed: %s", kind.value, exc)
        return entry
