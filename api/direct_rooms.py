"""Direct rooms: one private room per pair of users, whichever of the two asks first."""

from __future__ import annotations

import secrets

from api.db import Database
from api.errors import Unavailable, UserNotFound
from api.principal import Principal
from api.repository import RoomForUser
from api.rooms import RoomService, room_created

# "dm-" and 16 hex digits: matches the room-name rule and says nothing about who is in it.
NAME_ATTEMPTS = 3


def direct_room_name() -> str:
    return f"dm-{secrets.token_hex(8)}"


class DirectRoomService:
    def __init__(self, db: Database, rooms: RoomService) -> None:
        self.db = db
        self.rooms = rooms

    async def open(self, p: Principal, username: str) -> tuple[RoomForUser, bool]:
        """The caller's direct room with `username`, and whether it was created now."""
        created = False
        for _ in range(NAME_ATTEMPTS):
            async with self.db.tx(p.tenant_id) as tx:
                other = await tx.users.by_name(username)
                if other is None or other.disabled or other.id == p.user_id or other.is_service:
                    raise UserNotFound()
                found = await tx.rooms.create_direct(direct_room_name(), p.user_id, other.id)
                if found is not None and found[1]:
                    await room_created(tx, found[0], p)
            if found is not None:
                room, created = found
                break
        else:  # pragma: no cover - three random 64-bit names all taken
            raise Unavailable("could not name the direct room; retry")
        return await self.rooms.describe(p, room.name), created

    async def list(self, p: Principal) -> list[RoomForUser]:
        return await self.rooms.list_visible(p, direct_only=True)
