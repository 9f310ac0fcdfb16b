"""Read positions and unread counts.

`unread` counts readable entries (kinds `user` and `broadcast`) after the position, and stops
at a cap: one index range scan on (room_id, seq) of at most `cap` rows per room. A listing of
any number of rooms is one statement (a lateral count per room), never a query per room.
"""

from __future__ import annotations

from sqlalchemy import text

from api.repository.base import Repo
from api.repository.rows import READABLE_KINDS, ReadState, RoomForUser, room_row


def unread_sql(cap: str) -> str:
    """The capped unread count of room `r` after read position `rp` (either may be NULL),
    with `cap` as the parameter's placeholder (`:cap`, or asyncpg's `$n`)."""
    return f"""
    SELECT count(*) FROM (
        SELECT 1 FROM message m
        WHERE m.tenant_id = r.tenant_id AND m.room_id = r.id
          AND m.seq > coalesce(rp.last_read, 0)
          AND m.kind IN {READABLE_KINDS!r}
        LIMIT {cap}
    ) counted
"""


_UNREAD = unread_sql(":cap")

_VISIBLE_ROOMS = f"""
SELECT r.*, coalesce(rp.last_read, 0) AS last_read, ({_UNREAD}) AS unread, other.username AS dm_with
FROM room r
LEFT JOIN read_position rp
       ON rp.tenant_id = r.tenant_id AND rp.room_id = r.id AND rp.user_id = :user_id
LEFT JOIN LATERAL (
    SELECT u.username FROM membership mb
    JOIN app_user u ON u.tenant_id = mb.tenant_id AND u.id = mb.user_id
    WHERE mb.tenant_id = r.tenant_id AND mb.room_id = r.id AND mb.user_id <> :user_id
    ORDER BY mb.user_id LIMIT 1
) other ON r.dm_key IS NOT NULL
WHERE r.tenant_id = :tenant_id
  AND (NOT r.private OR CAST(:room_id AS bigint) IS NOT NULL OR EXISTS (
        SELECT 1 FROM membership me
        WHERE me.tenant_id = r.tenant_id AND me.room_id = r.id AND me.user_id = :user_id))
  AND (NOT :direct_only OR r.dm_key IS NOT NULL)
  AND (CAST(:room_id AS bigint) IS NULL OR r.id = :room_id)
ORDER BY r.name
"""

_STATE = f"""
SELECT coalesce(rp.last_read, 0) AS last_read, ({_UNREAD}) AS unread
FROM room r
LEFT JOIN read_position rp
       ON rp.tenant_id = r.tenant_id AND rp.room_id = r.id AND rp.user_id = :user_id
WHERE r.tenant_id = :tenant_id AND r.id = :room_id
"""

# max(last_read, min(seq, last_seq)); the row only changes when the position moves forward.
_ADVANCE = """
INSERT INTO read_position AS rp (tenant_id, room_id, user_id, last_read)
SELECT :tenant_id, :room_id, :user_id, LEAST(:seq, r.last_seq)
FROM room r WHERE r.tenant_id = :tenant_id AND r.id = :room_id
ON CONFLICT (tenant_id, room_id, user_id) DO UPDATE
SET last_read = EXCLUDED.last_read, updated_at = now()
WHERE rp.last_read < EXCLUDED.last_read
RETURNING last_read
"""

_CURRENT = """
SELECT last_read FROM read_position
WHERE tenant_id = :tenant_id AND room_id = :room_id AND user_id = :user_id
"""


class ReadRepo(Repo):
    async def rooms_for(
        self, user_id: int, cap: int, *, direct_only: bool = False, room_id: int | None = None
    ) -> list[RoomForUser]:
        """The rooms a user can see (public ones, and private ones they are a member of),
        each with their read state and, for a direct room, the other member. With `room_id`,
        that one room (the caller has checked access)."""
        rows = await self.conn.execute(
            text(_VISIBLE_ROOMS),
            dict(
                tenant_id=self.tenant_id,
                user_id=user_id,
                cap=cap,
                direct_only=direct_only,
                room_id=room_id,
            ),
        )
        return [RoomForUser(room_row(r), ReadState(r.last_read, r.unread), r.dm_with) for r in rows]

    async def state(self, room_id: int, user_id: int, cap: int) -> ReadState:
        row = (
            await self.conn.execute(
                text(_STATE),
                dict(tenant_id=self.tenant_id, room_id=room_id, user_id=user_id, cap=cap),
            )
        ).one()
        return ReadState(row.last_read, row.unread)

    async def advance(self, room_id: int, user_id: int, seq: int) -> tuple[int, bool]:
        """Move the position forward to `seq` (at most the room's last seq): the position
        afterwards, and whether it moved."""
        keys = dict(tenant_id=self.tenant_id, room_id=room_id, user_id=user_id)
        moved = (await self.conn.execute(text(_ADVANCE), dict(keys, seq=seq))).scalar()
        if moved is not None:
            return int(moved), int(moved) > 0  # a first row at 0 is no move
        current = (await self.conn.execute(text(_CURRENT), keys)).scalar()
        return int(current or 0), False
