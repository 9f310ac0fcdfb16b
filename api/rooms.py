"""RoomService: the rules for rooms and messages, shared by WebSocket, HTTP, SSE and CLI."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy.exc import IntegrityError

from api import events
from api.auth import Principal
from api.broker import Broker, room_channel, tenant_channel
from api.errors import BodyInvalid, Conflict, Forbidden, RateLimited, RoomNotFound, UserNotFound
from api.hub import Frames
from api.persister import Persister, Stored
from api.ratelimit import TokenBuckets
from api.repository import Database, MessageRow, RoomRow
from api.schemas import ROOM_NAME_PATTERN, message_frame
from api.settings import Settings

ROOM_NAME = re.compile(ROOM_NAME_PATTERN)


class RoomService:
    def __init__(self, db: Database, broker: Broker, settings: Settings) -> None:
        self.db = db
        self.broker = broker
        self.settings = settings
        self.persister = Persister(
            db,
            self.publish,
            batch_max=settings.persister.batch_max,
            batch_wait=settings.persister.batch_wait_ms / 1000,
        )
        self.buckets = TokenBuckets(
            settings.limits.messages_per_second, settings.limits.message_burst
        )

    # rooms ---------------------------------------------------------------------
    async def create(self, p: Principal, name: str, private: bool) -> RoomRow:
        async with self.db.tx(p.tenant_id) as repo:
            room = await repo.create_room(p.tenant_id, name, private, p.user_id)
        if room is None:
            raise Conflict(f"room {name!r} already exists")
        return room

    async def list_visible(self, p: Principal) -> list[RoomRow]:
        async with self.db.tx(p.tenant_id) as repo:
            return await repo.visible_rooms(p.tenant_id, p.user_id)

    async def get(self, p: Principal, name: str, *, create_missing: bool = False) -> RoomRow:
        """The room if the caller may use it. Another tenant's room is exactly a missing one;
        a private room of one's own tenant needs membership (admins see all)."""
        if not ROOM_NAME.fullmatch(name):
            raise RoomNotFound()  # no room can have this name
        async with self.db.tx(p.tenant_id) as repo:
            room = await repo.room_by_name(p.tenant_id, name)
            if room is None and create_missing:
                room = await repo.create_room(
                    p.tenant_id, name, False, p.user_id
                ) or await repo.room_by_name(p.tenant_id, name)
            if room is None:
                raise RoomNotFound()
            if (
                room.private
                and not p.is_admin
                and not await repo.is_member(p.tenant_id, room.id, p.user_id)
            ):
                raise Forbidden("this room is private")
        return room

    async def get_for_join(self, p: Principal, name: str) -> RoomRow:
        return await self.get(p, name, create_missing=self.settings.rooms.auto_create)

    async def _managed_room(self, p: Principal, name: str) -> RoomRow:
        room = await self.get(p, name)
        if not p.is_admin and room.created_by != p.user_id:
            raise Forbidden("only an admin or the room's creator can manage members")
        return room

    async def add_member(self, p: Principal, name: str, username: str) -> None:
        room = await self._managed_room(p, name)
        try:
            async with self.db.tx(p.tenant_id) as repo:
                user = await repo.user_by_name(p.tenant_id, username)
                if user is None or user.disabled:
                    raise UserNotFound()
                await repo.add_member(p.tenant_id, room.id, user.id)
        except IntegrityError as exc:  # pragma: no cover - the row vanished concurrently
            raise UserNotFound() from exc

    async def remove_member(self, p: Principal, name: str, username: str) -> None:
        """Remove a member; in a private room their open sockets leave it at once."""
        room = await self._managed_room(p, name)
        async with self.db.tx(p.tenant_id) as repo:
            user = await repo.user_by_name(p.tenant_id, username)
            if user is None or not await repo.remove_member(p.tenant_id, room.id, user.id):
                raise UserNotFound(f"{username!r} is not a member of this room")
        if room.private:
            await self.broker.publish(
                tenant_channel(p.tenant_id),
                events.simple_event(events.REMOVED, f"{user.id} {room.id}"),
            )

    async def all_rooms(self, p: Principal) -> list[tuple[RoomRow, int]]:
        async with self.db.tx(p.tenant_id) as repo:
            return await repo.rooms_with_member_counts(p.tenant_id)

    async def history(
        self, p: Principal, name: str, *, after: int | None, before: int | None, limit: int
    ) -> tuple[list[MessageRow], bool]:
        room = await self.get(p, name)
        async with self.db.tx(p.tenant_id) as repo:
            return await repo.history(p.tenant_id, room, after=after, before=before, limit=limit)

    async def presence(self, p: Principal, name: str) -> dict[str, int]:
        room = await self.get(p, name)
        return await self.broker.presence(room_channel(p.tenant_id, room.id))

    # messages --------------------------------------------------------------------
    def check_body(self, body: object) -> str:
        if not isinstance(body, str) or not body.strip():
            raise BodyInvalid("the body must be a non-empty string")
        if len(body) > self.settings.limits.max_body_chars:
            raise BodyInvalid(
                f"the body is longer than {self.settings.limits.max_body_chars} characters"
            )
        return body

    def check_rate(self, p: Principal) -> None:
        wait = self.buckets.take((p.tenant_id, p.user_id))
        if wait > 0:
            raise RateLimited(wait, "too many messages; slow down")

    def enqueue_post(
        self, p: Principal, room: RoomRow, body: object, client_msg_id: str | None
    ) -> asyncio.Future[tuple[Stored, bool]]:
        """Validate and rate-limit now (raising at once), store later: the future resolves
        with (stored, created) after the commit."""
        text = self.check_body(body)
        self.check_rate(p)
        return self.persister.enqueue(
            tenant_id=p.tenant_id,
            room_id=room.id,
            room=room.name,
            sender_id=p.user_id,
            sender=p.username,
            body=text,
            client_msg_id=client_msg_id,
        )

    async def post(
        self, p: Principal, room: RoomRow, body: object, client_msg_id: str | None
    ) -> tuple[Stored, bool]:
        return await self.enqueue_post(p, room, body, client_msg_id)

    async def publish(self, batch: list[Stored]) -> None:
        await self.broker.publish_many(
            [
                (room_channel(s.tenant_id, s.room_id), events.message_event(s.message.seq, s.frame))
                for s in batch
            ]
        )

    # HistoryLoader, for the hub ------------------------------------------------------
    async def last_seq(self, tenant_id: int, room_id: int) -> int:
        async with self.db.tx(tenant_id) as repo:
            return await repo.room_last_seq(tenant_id, room_id)

    async def frames_between(
        self, tenant_id: int, room_id: int, room_name: str, after: int, upto: int, limit: int
    ) -> Frames:
        async with self.db.tx(tenant_id) as repo:
            rows = await repo.messages_between(tenant_id, room_id, room_name, after, upto, limit)
        return [(m.seq, message_frame(m)) for m in rows]
