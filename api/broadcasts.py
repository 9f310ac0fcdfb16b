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
from api.broker.relay import RelayReference
from api.db import Database
from api.errors import Conflict
from api.persister import Persister
from api.protocol import server as frames
from api.repository import BroadcastPage, BroadcastRow, ClaimState, MessageKind
from api.rooms import RoomService

SCOPE = "broadcast"


def _tenant_broadcast_event(b: BroadcastRow) -> str:
    return events.simple_event(events.BROADCAST, frames.broadcast(b.id, b.body, b.ts))


class BroadcastService:
    def __init__(
        self, db: Database, broker: Broker, rooms: RoomService, persister: Persister
    ) -> None:
        self.db = db
        self.broker = broker
        self.rooms = rooms
        self.persister = persister

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
        async with self.db.tx(tenant_id) as tx:
            claim = await tx.idempotency.claim(SCOPE, idempotency_key)
        if claim.state is ClaimState.DONE:
            assert claim.answer is not None
            return claim.answer
        if claim.state is ClaimState.BUSY:
            raise Conflict("a request with this Idempotency-Key is still in progress")
        try:
            answer = await self._send(tenant_id, sender, sender_id, text, room_names)
        except BaseException:
            async with self.db.tx(tenant_id) as tx:
                await tx.idempotency.release(SCOPE, idempotency_key)
            raise
        async with self.db.tx(tenant_id) as tx:
            await tx.idempotency.answer(SCOPE, idempotency_key, answer)
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
            async with self.db.tx(tenant_id) as tx:
                stored = await tx.broadcasts.create(sender, body, None)
            channel = tenant_channel(tenant_id)
            recipients = await self.connections(channel)
            await self.broker.publish(channel, _tenant_broadcast_event(stored))
            return {"id": stored.id, "recipients": recipients}
        names = list(dict.fromkeys(room_names))
        targets = await self.rooms.by_names(tenant_id, names)  # all exist, or nothing is sent
        async with self.db.tx(tenant_id) as tx:
            stored = await tx.broadcasts.create(sender, body, names)
        await asyncio.gather(
            *(
                self.persister.enqueue(
                    tenant_id=tenant_id,
                    room_id=room.id,
                    room=room.name,
                    sender_id=sender_id,
                    sender=sender,
                    body=body,
                    kind=MessageKind.BROADCAST,
                )
                for room in targets
            )
        )
        recipients = 0
        for room in targets:
            recipients += await self.connections(room_channel(tenant_id, room.id))
        return {"id": stored.id, "recipients": recipients}

    async def resolve_relayed(self, reference: RelayReference) -> None:
        """Publish, on this process's broker, what another process stored (see broker.relay)."""
        tenant_id = reference.tenant_id
        async with self.db.tx(tenant_id) as tx:
            if reference.room_id is not None:
                message = await tx.messages.at(reference.room_id, reference.seq)
                if message is not None:
                    await self.broker.publish(
                        room_channel(tenant_id, reference.room_id),
                        events.message_event(message.seq, frames.message(message)),
                    )
            elif reference.broadcast_id is not None:
                stored = await tx.broadcasts.get(reference.broadcast_id)
                if stored is not None:
                    await self.broker.publish(
                        tenant_channel(tenant_id), _tenant_broadcast_event(stored)
                    )

    async def connections(self, channel: str) -> int:
        """Open sockets on a tenant or room channel, across every worker."""
        return sum((await self.broker.presence(channel)).values())

    async def since(self, tenant_id: int, after: int, limit: int) -> BroadcastPage:
        async with self.db.tx(tenant_id) as tx:
            return await tx.broadcasts.tenant_wide_after(after, limit)
