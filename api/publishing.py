"""`POST /publish`: an app's backend stores a batch of messages in one transaction, each
idempotent by its client_msg_id, with a result per message in request order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.batch import Draft
from api.db import Database
from api.errors import APIError, PrivateRoom, RoomNotFound, ValidationFailed
from api.persister import Persister
from api.principal import Principal
from api.repository import MessageKind, RoomRow
from api.rooms import RoomService
from api.rules import is_room_name


@dataclass(frozen=True, slots=True)
class Outgoing:
    room: str
    body: object
    client_msg_id: str | None = None


class PublishService:
    def __init__(
        self, db: Database, rooms: RoomService, persister: Persister, batch_limit: int
    ) -> None:
        self.db = db
        self.rooms = rooms
        self.persister = persister
        self.batch_limit = batch_limit

    async def publish(self, p: Principal, batch: list[Outgoing]) -> list[dict[str, Any]]:
        if not batch or len(batch) > self.batch_limit:
            raise ValidationFailed(f"send 1 to {self.batch_limit} messages")
        targets = await self._rooms(p, {m.room for m in batch})
        results: list[dict[str, Any]] = [{} for _ in batch]
        drafts: list[tuple[int, Draft]] = []
        for i, message in enumerate(batch):
            room = targets.get(message.room)
            try:
                if isinstance(room, APIError):
                    raise room
                assert room is not None
                body = self.rooms.check_body(message.body)
            except APIError as exc:
                results[i] = {"room": message.room, "error": exc.code, "detail": exc.detail}
                continue
            drafts.append((i, self._draft(p, room, body, message.client_msg_id)))
        if drafts:
            stored = await self.persister.store_together([d for _, d in drafts])
            for (i, _), (done, _) in zip(drafts, stored, strict=True):
                results[i] = {"room": done.message.room, "seq": done.message.seq}
        return results

    async def _rooms(self, p: Principal, names: set[str]) -> dict[str, RoomRow | APIError]:
        """Each named room, or why it cannot take messages from this caller (one query for
        the rooms, one per private room a person names)."""
        found: dict[str, RoomRow | APIError] = {}
        async with self.db.tx(p.tenant_id) as tx:
            rows = await tx.rooms.by_names([n for n in names if is_room_name(n)])
            for name in names:
                room = rows.get(name)
                if room is None:
                    found[name] = RoomNotFound(f"room {name!r} not found")
                elif room.private and not await self.rooms.may_post(tx, p, room):
                    found[name] = PrivateRoom()
                else:
                    found[name] = room
        return found

    @staticmethod
    def _draft(p: Principal, room: RoomRow, body: str, client_msg_id: str | None) -> Draft:
        return Draft(
            p.tenant_id,
            room.id,
            room.name,
            p.user_id,
            p.username,
            body,
            MessageKind.USER,
            client_msg_id,
            room.private,
        )
