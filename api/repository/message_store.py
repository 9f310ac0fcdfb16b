"""The persister's hot path, on the raw asyncpg connection.

A batch costs one script (BEGIN, tenant stamp, row locks in id order), one statement per
tenant that advances each room's last_seq, inserts every row and moves the senders' read
positions, and COMMIT, however many rooms it touches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from api.repository.base import stamp_tenant_script
from api.repository.rows import READABLE_KINDS, MessageRow, message_row


def _message_json(m: str, ts: str) -> str:
    """The contract's message object, built in SQL for the webhook outbox (the same fields
    as api.protocol.server.message_dict) from alias `m` and the timestamp expression `ts`."""
    return (
        "jsonb_strip_nulls(jsonb_build_object("
        f"'room', r.name, 'seq', {m}.seq, 'sender', {m}.sender, 'body', {m}.body, "
        f"""'ts', to_char({ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), """
        f"'kind', {m}.kind, 'client_msg_id', {m}.client_msg_id))"
    )


_APPEND = f"""
WITH msgs AS (
    SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                         $7::text[]) WITH ORDINALITY
        AS m(room_id, sender_id, sender, body, kind, client_msg_id, ord)
), counts AS (
    SELECT room_id, count(*) AS k FROM msgs GROUP BY room_id
), bumped AS (
    UPDATE room SET last_seq = room.last_seq + counts.k FROM counts
    WHERE room.tenant_id = $1 AND room.id = counts.room_id
    RETURNING room.id, room.last_seq - counts.k AS base
), inserted AS (
    INSERT INTO message (tenant_id, room_id, seq, sender_id, sender, body, kind,
                         client_msg_id, created_at)
    SELECT $1, m.room_id,
           b.base + row_number() OVER (PARTITION BY m.room_id ORDER BY m.ord),
           m.sender_id, m.sender, m.body, m.kind, m.client_msg_id, $8
    FROM msgs m JOIN bumped b ON b.id = m.room_id
    RETURNING room_id, sender_id, seq, sender, body, kind, client_msg_id
), sender_read AS (
    -- sending moves the sender's read position to its message (it only moves forward)
    INSERT INTO read_position (tenant_id, room_id, user_id, last_read)
    SELECT $1, room_id, sender_id, max(seq) FROM inserted WHERE sender_id IS NOT NULL
    GROUP BY room_id, sender_id
    ON CONFLICT (tenant_id, room_id, user_id) DO UPDATE
    SET last_read = GREATEST(read_position.last_read, EXCLUDED.last_read), updated_at = now()
), created_events AS (
    -- the webhook outbox, in the same transaction: nothing unless an endpoint wants it
    INSERT INTO webhook_delivery (event_id, endpoint_id, tenant_id, type, data, created_at)
    SELECT 'evt_m' || i.room_id || '_' || i.seq, e.id, $1, 'message.created',
           {_message_json("i", "$8")}, $8
    FROM inserted i
    JOIN room r ON r.tenant_id = $1 AND r.id = i.room_id
    JOIN webhook_endpoint e ON e.tenant_id = $1 AND 'message.created' = ANY(e.events)
    WHERE i.kind IN {READABLE_KINDS!r}
      -- asked once, first: a tenant without such an endpoint skips the join entirely
      AND EXISTS (SELECT 1 FROM webhook_endpoint w
                  WHERE w.tenant_id = $1 AND 'message.created' = ANY(w.events))
)
SELECT id, base FROM bumped
"""

# message.unseen: a member of a private room with no open socket anywhere when it committed.
_WANTS_UNSEEN = """
SELECT EXISTS (SELECT 1 FROM webhook_endpoint
               WHERE tenant_id = $1 AND 'message.unseen' = ANY(events))
"""
_UNSEEN = f"""
INSERT INTO webhook_delivery (event_id, endpoint_id, tenant_id, type, data, created_at)
SELECT 'evt_u' || m.room_id || '_' || m.seq || '_' || u.id, e.id, $1, 'message.unseen',
       jsonb_build_object('user', u.username, 'message', {_message_json("m", "m.created_at")}),
       m.created_at
FROM unnest($2::bigint[], $3::bigint[]) AS fresh(room_id, seq)
JOIN message m ON m.tenant_id = $1 AND m.room_id = fresh.room_id AND m.seq = fresh.seq
JOIN room r ON r.tenant_id = $1 AND r.id = m.room_id AND r.private
JOIN membership mb ON mb.tenant_id = $1 AND mb.room_id = m.room_id
JOIN app_user u ON u.tenant_id = $1 AND u.id = mb.user_id
JOIN webhook_endpoint e ON e.tenant_id = $1 AND 'message.unseen' = ANY(e.events)
WHERE u.id IS DISTINCT FROM m.sender_id AND NOT (u.username = ANY($4::text[]))
ON CONFLICT DO NOTHING
"""

_EXISTING = """
SELECT m.sender_id, m.client_msg_id, m.room_id, m.seq, m.sender, m.body, m.kind,
       m.created_at, m.target, m.edited_at, m.deleted_at, r.name AS room_name
FROM message m JOIN room r ON r.tenant_id = m.tenant_id AND r.id = m.room_id
WHERE m.tenant_id = $1 AND (m.sender_id, m.client_msg_id) IN
      (SELECT * FROM unnest($2::bigint[], $3::text[]))
"""


class NewMessage(Protocol):
    """A message to append (the persister's drafts)."""

    @property
    def room_id(self) -> int: ...
    @property
    def sender_id(self) -> int | None: ...
    @property
    def sender(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def client_msg_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ExistingMessage:
    room_id: int
    message: MessageRow


IdempotencyKey = tuple[int, str]  # (sender id, client_msg_id)


class MessageStore:
    def __init__(self, conn: Any) -> None:
        self.conn = conn  # asyncpg.Connection

    async def lock_rooms(self, tenant_id: int, room_ids: Sequence[int], begin: bool) -> None:
        """Stamp the tenant and lock its rooms in id order (so writers never deadlock),
        after opening the transaction when `begin`. Only integers are inlined: one
        simple-protocol round trip."""
        ids = ",".join(str(int(r)) for r in sorted(set(room_ids)))
        tid = int(tenant_id)
        await self.conn.execute(
            stamp_tenant_script(tid, begin=begin) + "; "
            f"SELECT id FROM room WHERE tenant_id = {tid} AND id IN ({ids}) "
            "ORDER BY id FOR UPDATE"
        )

    async def existing(
        self, tenant_id: int, keys: Sequence[IdempotencyKey]
    ) -> dict[IdempotencyKey, ExistingMessage]:
        """Messages already stored under these (sender, client_msg_id) keys."""
        rows = await self.conn.fetch(
            _EXISTING, tenant_id, [k[0] for k in keys], [k[1] for k in keys]
        )
        return {
            (r["sender_id"], r["client_msg_id"]): ExistingMessage(
                r["room_id"], message_row(r["room_name"], r)
            )
            for r in rows
        }

    async def append(
        self, tenant_id: int, messages: Sequence[NewMessage], ts: datetime
    ) -> dict[int, int]:
        """Append in this order; returns each room's seq before this batch (the batch takes
        the next ones, in order)."""
        columns = (
            [m.room_id for m in messages],
            [m.sender_id for m in messages],
            [m.sender for m in messages],
            [m.body for m in messages],
            [m.kind for m in messages],
            [m.client_msg_id for m in messages],
        )
        result = await self.conn.fetch(_APPEND, tenant_id, *columns, ts)
        return {r["id"]: r["base"] for r in result}

    async def wants_unseen(self, tenant_id: int) -> bool:
        return bool(await self.conn.fetchval(_WANTS_UNSEEN, tenant_id))

    async def outbox_unseen(
        self, tenant_id: int, stored: Sequence[tuple[int, int]], online: Sequence[str]
    ) -> None:
        """`message.unseen` for each (room id, seq) just stored in a private room, for each
        member other than the sender who is not among `online` usernames."""
        await self.conn.execute(
            _UNSEEN, tenant_id, [r for r, _ in stored], [s for _, s in stored], list(online)
        )

    async def commit(self) -> None:
        await self.conn.execute("COMMIT")

    async def rollback(self) -> None:
        await self.conn.execute("ROLLBACK")
