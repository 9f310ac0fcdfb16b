"""BroadcastService: an admin's announcement to a whole tenant or to chosen rooms, shared by
`POST /admin/broadcast` and `switchboard broadcast`.

Tenant-wide: stored, then one `broadcast` frame on the tenant channel (every socket of the
tenant, on every worker). To rooms: a `kind:"broadcast"` message appended to each room's
history through the persister, so it has its seq and reaches members like any message.
An Idempotency-Key is claimed in Postgres before the work and answered after it, so a retry
(on any worker, after any restart) within 24 h returns the first answer and sends nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from api import events
from api.broker import Broker, room_channel, tenant_channel
from api.errors import Conflict, RoomNotFound
from api.repository import BroadcastRow, Database, RoomRow
from api.rooms import ROOM_NAME, RoomService
from api.schemas import encode, iso, message_frame

SCOPE = "broadcast"


def broadcast_frame(b: BroadcastRow) -> str:
    return encode({"type": "broadcast", "id": b.id, "body": b.body, "ts": iso(b.ts)})


class BroadcastService:
    def __init__(self, db: Database, broker: Broker, rooms: RoomService) -> None:
        self.db = db
        self.broker = broker
        self.rooms = rooms

    async def broadcast(
        self,
        tenant_id: int,
        *,
        sender: str,
        sender_id: int | None,
        body: object,
        room_names: list[str] | None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        text = self.rooms.check_body(body)
        if idempotency_key is None:
            return await self._send(tenant_id, sender, sender_id, text, room_names)
        async with self.db.tx(tenant_id) as repo:
            state, answer = await repo.claim_idempotency(tenant_id, SCOPE, idempotency_key)
        if state == "done":
            assert answer is not None
            return answer
        if state == "busy":
            raise Conflict("a request with this Idempotency-Key is still in progress")
        try:
            answer = await self._send(tenant_id, sender, sender_id, text, room_names)
        except BaseException:
            async with self.db.tx(tenant_id) as repo:
                await repo.release_idempotency(tenant_id, SCOPE, idempotency_key)
            raise
        async with self.db.tx(tenant_id) as repo:
            await repo.answer_idempotency(tenant_id, SCOPE, idempotency_key, answer)
        return answer

    async def _send(
        self,
        tenant_id: int,
        sender: str,
        sender_id: int | None,
        body: str,
        room_names: list[str] | None,
    ) -> dict[str, Any]:
        if room_names is None:
            async with self.db.tx(tenant_id) as repo:
                stored = await repo.create_broadcast(tenant_id, sender, body, None)
            channel = tenant_channel(tenant_id)
            recipients = await self.connections(channel)
            await self.broker.publish(
                channel, events.simple_event(events.BROADCAST, broadcast_frame(stored))
            )
            return {"id": stored.id, "recipients": recipients}
        names = list(dict.fromkeys(room_names))
        targets = await self._rooms(tenant_id, names)  # all exist, or nothing is sent
        async with self.db.tx(tenant_id) as repo:
            stored = await repo.create_broadcast(tenant_id, sender, body, names)
        await asyncio.gather(
            *(
                self.rooms.persister.submit(
                    tenant_id=tenant_id,
                    room_id=room.id,
                    room=room.name,
                    sender_id=sender_id,
                    sender=sender,
                    body=body,
                    kind="broadcast",
                )
                for room in targets
            )
        )
        recipients = 0
        for room in targets:
            recipients += await self.connections(room_channel(tenant_id, room.id))
        return {"id": stored.id, "recipients": recipients}

    async def _rooms(self, tenant_id: int, names: list[str]) -> list[RoomRow]:
        found = []
        async with self.db.tx(tenant_id) as repo:
            for name in names:
                room = (
                    await repo.room_by_name(tenant_id, name) if ROOM_NAME.fullmatch(name) else None
                )
                if room is None:
                    raise RoomNotFound(f"room {name!r} not found")
                found.append(room)
        return found

    async def resolve_relayed(self, reference: str) -> None:
        """Publish, on this process's broker, what another process stored (see broker.relay)."""
        kind, *ids = reference.split()
        tenant_id = int(ids[0])
        async with self.db.tx(tenant_id) as repo:
            if kind == "m":
                room_id, seq = int(ids[1]), int(ids[2])
                message = await repo.message_at(tenant_id, room_id, seq)
                if message is not None:
                    await self.broker.publish(
                        room_channel(tenant_id, room_id),
                        events.message_event(seq, message_frame(message)),
                    )
            elif kind == "b":
                stored = await repo.broadcast(tenant_id, int(ids[1]))
                if stored is not None:
                    await self.broker.publish(
                        tenant_channel(tenant_id),
                        events.simple_event(events.BROADCAST, broadcast_frame(stored)),
                    )

    async def connections(self, channel: str) -> int:
        """Open sockets on a tenant or room channel, across every worker."""
        return sum((await self.broker.presence(channel)).values())

    async def since(
        self, tenant_id: int, after: int, limit: int
    ) -> tuple[list[BroadcastRow], bool]:
        async with self.db.tx(tenant_id) as repo:
            return await repo.tenant_broadcasts(tenant_id, after, limit)
