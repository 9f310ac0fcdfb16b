"""Read positions: moved forward by `read` frames, `PUT /rooms/{room}/read` and sending, and
announced to the user's other connections (and, in private rooms, to the other members:
read receipts)."""

from __future__ import annotations

import logging

from api import events
from api.broker import Broker, room_channel
from api.db import Database
from api.principal import Principal
from api.protocol import server as frames
from api.repository import RoomRow

log = logging.getLogger("switchboard.reads")


class ReadService:
    def __init__(self, db: Database, broker: Broker) -> None:
        self.db = db
        self.broker = broker

    async def advance(self, p: Principal, room: RoomRow, seq: int) -> tuple[int, bool]:
        """max(last_read, min(seq, last_seq)): the position afterwards, and whether it
        moved (then every connection concerned hears of it, on every worker)."""
        async with self.db.tx(p.tenant_id) as tx:
            last_read, moved = await tx.reads.advance(room.id, p.user_id, seq)
        if moved:
            frame = frames.read(room.name, p.username, last_read)
            try:
                await self.broker.publish(
                    room_channel(room.tenant_id, room.id),
                    events.read_event(p.user_id, room.private, frame),
                )
            except Exception as exc:  # stored is stored; the next join reports it
                log.warning("announcing a read position failed: %s", exc)
        return last_read, moved
