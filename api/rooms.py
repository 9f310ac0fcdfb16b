"""RoomService: the rules for rooms and messages, shared by WebSocket, HTTP, SSE and CLI."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import IntegrityError

from api import events
from api.batch import Stored
from api.broker import Broker, room_channel, tenant_channel
from api.db import Database
from api.errors import (
    BodyInvalid,
    Conflict,
    Forbidden,
    PrivateRoom,
    RateLimited,
    RoomNotFound,
    UserNotFound,
)
from api.fanout import Frames
from api.persister import Persister
from api.principal import Principal
from api.protocol import server as frames
from api.ratelimit import TokenBuckets
from api.repository import (
    MessagePage,
    ReadState,
    RoomForUser,
    RoomRow,
    RoomWithMembers,
    Tx,
)
from api.rules import is_room_name
from api.settings import Settings


async def room_created(tx: Tx, room: RoomRow, by: Principal) -> None:
    """The `room.created` webhook event, in the transaction that created the room."""
    data = {"name": room.name, "private": room.private, "created_by": by.username}
    if room.is_direct:
        data["direct"] = True
    await tx.webhooks.enqueue("room.created", data)


class RoomService:
    def __init__(
        self, db: Database, broker: Broker, persister: Persister, settings: Settings
    ) -> None:
        self.db = db
        self.broker = broker
        self.persister = persister
        self.settings = settings
        self.buckets = TokenBuckets(
            settings.limits.messages_per_second, settings.limits.message_burst
        )

    # rooms ---------------------------------------------------------------------
    async def create(self, p: Principal, name: str, private: bool) -> RoomRow:
        async with self.db.tx(p.tenant_id) as tx:
            room = await tx.rooms.create(name, private, p.user_id)
            if room is not None:
                await room_created(tx, room, p)
        if room is None:
            raise Conflict(f"room {name!r} already exists")
        return room

    async def list_visible(self, p: Principal, *, direct_only: bool = False) -> list[RoomForUser]:
        """Every room the caller can see, with its read state: one query for any number."""
        async with self.db.tx(p.tenant_id) as tx:
            return await tx.reads.rooms_for(
                p.user_id, self.settings.limits.unread_cap, direct_only=direct_only
            )

    async def describe(self, p: Principal, name: str) -> RoomForUser:
        """One room as the caller sees it (read state, the other member of a direct room)."""
        async with self.db.tx(p.tenant_id) as tx:
            room = await self._get(tx, p, name)
            found = await tx.reads.rooms_for(
                p.user_id, self.settings.limits.unread_cap, room_id=room.id
            )
        return found[0]

    async def get(self, p: Principal, name: str) -> RoomRow:
        async with self.db.tx(p.tenant_id) as tx:
            return await self._get(tx, p, name)

    async def _get(
        self, tx: Tx, p: Principal, name: str, *, create_missing: bool = False
    ) -> RoomRow:
        """The room if the caller may use it. Another tenant's room is exactly a missing one;
        a private room of one's own tenant needs membership (admins see all but direct
        rooms, which are their two members' only)."""
        if not is_room_name(name):
            raise RoomNotFound()  # no room can have this name
        room = await tx.rooms.by_name(name)
        if room is None and create_missing:
            room = await tx.rooms.create(name, False, p.user_id)
            if room is not None:
                await room_created(tx, room, p)
            else:  # created by someone else meanwhile
                room = await tx.rooms.by_name(name)
        if room is None:
            raise RoomNotFound()
        if room.private and not await self.may_post(tx, p, room):
            raise PrivateRoom()
        return room

    @staticmethod
    async def may_post(tx: Tx, p: Principal, room: RoomRow) -> bool:
        """A private room: its members; admins and API keys too, except in direct rooms,
        which are their two members' only."""
        if _admitted_without_membership(p, room):
            return True
        return await tx.rooms.is_member(room.id, p.user_id)

    async def get_for_join(self, p: Principal, name: str) -> tuple[RoomRow, ReadState]:
        """The room to join, and the joiner's read state in it (for `joined`). Every
        reconnect costs one, so it is one statement on the raw connection; a room that
        does not exist yet (auto-create) takes the general path."""
        if is_room_name(name):
            cap = self.settings.limits.unread_cap
            view = await self.db.join_view(p.tenant_id, name, p.user_id, cap)
            if view is not None:
                room = view.room
                if room.private and not (view.is_member or _admitted_without_membership(p, room)):
                    raise PrivateRoom()
                return room, view.read
        async with self.db.tx(p.tenant_id) as tx:
            room = await self._get(tx, p, name, create_missing=self.settings.rooms.auto_create)
            read = await tx.reads.state(room.id, p.user_id, self.settings.limits.unread_cap)
        return room, read

    async def by_names(self, tenant_id: int, names: list[str]) -> list[RoomRow]:
        """Every named room of the tenant (no access check: for admins and the CLI), or
        RoomNotFound for the first that does not exist."""
        async with self.db.tx(tenant_id) as tx:
            rows = await tx.rooms.by_names([n for n in names if is_room_name(n)])
        for name in names:
            if name not in rows:
                raise RoomNotFound(f"room {name!r} not found")
        return [rows[name] for name in names]

    async def _managed_room(self, p: Principal, name: str) -> RoomRow:
        room = await self.get(p, name)
        if room.is_direct:
            raise Forbidden("a direct room has exactly its two members")
        if not p.is_admin and room.created_by != p.user_id:
            raise Forbidden("only an admin or the room's creator can manage members")
        return room

    async def add_member(self, p: Principal, name: str, username: str) -> None:
        room = await self._managed_room(p, name)
        try:
            async with self.db.tx(p.tenant_id) as tx:
                user = await tx.users.by_name(username)
                if user is None or user.disabled:
                    raise UserNotFound()
                await tx.rooms.add_member(room.id, user.id)
        except IntegrityError as exc:  # pragma: no cover - the row vanished concurrently
            raise UserNotFound() from exc

    async def remove_member(self, p: Principal, name: str, username: str) -> None:
        """Remove a member; in a private room their open sockets leave it at once."""
        room = await self._managed_room(p, name)
        async with self.db.tx(p.tenant_id) as tx:
            user = await tx.users.by_name(username)
            if user is None or not await tx.rooms.remove_member(room.id, user.id):
                raise UserNotFound(f"{username!r} is not a member of this room")
        if room.private:
            await self.broker.publish(
                tenant_channel(p.tenant_id),
                events.removed_event(user.id, room.id),
            )

    async def all_rooms(self, p: Principal) -> list[RoomWithMembers]:
        async with self.db.tx(p.tenant_id) as tx:
            return await tx.rooms.with_member_counts()

    async def history(
        self, p: Principal, name: str, *, after: int | None, before: int | None, limit: int
    ) -> MessagePage:
        room = await self.get(p, name)
        async with self.db.tx(p.tenant_id) as tx:
            return await tx.messages.page(room, after=after, before=before, limit=limit)

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
        """Per person; an app's backend (an API key) is not rate-limited here."""
        if p.is_service:
            return
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
            private=room.private,
        )

    async def post(
        self, p: Principal, room: RoomRow, body: object, client_msg_id: str | None
    ) -> tuple[Stored, bool]:
        return await self.enqueue_post(p, room, body, client_msg_id)

    # HistoryLoader, for the hub ------------------------------------------------------
    async def last_seq(self, tenant_id: int, room_id: int) -> int:
        async with self.db.tx(tenant_id) as tx:
            return await tx.rooms.last_seq(room_id)

    async def frames_between(
        self, tenant_id: int, room_id: int, room_name: str, after: int, upto: int, limit: int
    ) -> Frames:
        async with self.db.tx(tenant_id) as tx:
            rows = await tx.messages.between(room_id, room_name, after, upto, limit)
        return [(m.seq, frames.message(m)) for m in rows]


def _admitted_without_membership(p: Principal, room: RoomRow) -> bool:
    """Admins and API keys use every private room of their tenant but direct rooms."""
    return (p.is_admin or p.is_service) and not room.is_direct
