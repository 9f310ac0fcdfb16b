"""The persister's hot path, on the raw asyncpg connection.

A batch of any tenants and rooms is one call of the database function `switchboard_append`
(migration a7c9e1f3b5d7): one round trip, its own transaction. Only a batch with messages
in private rooms, whose `message.unseen` rows need the broker's presence, opens a
transaction around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from api.repository.base import stamp_tenant_script
from api.repository.rows import READABLE_KINDS, MessageRow, message_row

# One call stores a batch (the function's migration says how, and why one round trip).
# It is told which kinds are readable, and so `message.created`: one rule, in rows.py.
_READABLE = list(READABLE_KINDS)
_APPEND = "SELECT * FROM switchboard_append($1, $2, $3, $4, $5, $6, $7, $8, $9)"

# message.unseen: a member of a private room with no open socket anywhere when it committed.
_UNSEEN = """
INSERT INTO webhook_delivery (event_id, endpoint_id, tenant_id, type, data, created_at)
SELECT 'evt_u' || m.room_id || '_' || m.seq || '_' || u.id, e.id, $1, 'message.unseen',
       jsonb_build_object('user', u.username, 'message', switchboard_message_json(
           r.name, m.seq, m.sender, m.body, m.created_at, m.kind, m.client_msg_id)),
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


class NewMessage(Protocol):
    """A message to append (the persister's drafts)."""

    @property
    def tenant_id(self) -> int: ...
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
class Appended:
    """What became of one message of a batch: stored now with `seq` (`original` None), or
    a retry of a (sender, client_msg_id) already stored, which is `original` (in room
    `room_id`)."""

    seq: int
    room_id: int
    original: MessageRow | None
    wants_unseen: bool  # the tenant has a `message.unseen` endpoint


class MessageStore:
    def __init__(self, conn: Any) -> None:
        self.conn = conn  # asyncpg.Connection

    async def append(self, messages: Sequence[NewMessage], ts: datetime) -> list[Appended]:
        """Store the batch (any tenants) with the next seqs of each room, in this order;
        one `Appended` per message, in order. Outside a transaction, the call is its own
        and is committed when it returns. A message whose room is not its tenant's fails
        them all (asyncpg.ForeignKeyViolationError)."""
        rows = await self.conn.fetch(
            _APPEND,
            [m.tenant_id for m in messages],
            [m.room_id for m in messages],
            [m.sender_id for m in messages],
            [m.sender for m in messages],
            [m.body for m in messages],
            [m.kind for m in messages],
            [m.client_msg_id for m in messages],
            ts,
            _READABLE,
        )
        appended: list[Appended | None] = [None] * len(messages)
        for r in rows:
            original = None if r["created"] else message_row(r["room_name"], r)
            appended[r["ord"] - 1] = Appended(r["seq"], r["room_id"], original, r["wants_unseen"])
        if None in appended:  # the function answers every message or raises
            raise RuntimeError("switchboard_append left a message unanswered")
        return cast(list[Appended], appended)

    async def begin(self) -> None:
        await self.conn.execute("BEGIN")

    async def outbox_unseen(
        self, tenant_id: int, stored: Sequence[tuple[int, int]], online: Sequence[str]
    ) -> None:
        """`message.unseen` for each (room id, seq) just stored in a private room, for each
        member other than the sender who is not among `online` usernames (in the
        transaction `begin` opened)."""
        await self.conn.execute(stamp_tenant_script(tenant_id, begin=False))
        await self.conn.execute(
            _UNSEEN, tenant_id, [r for r, _ in stored], [s for _, s in stored], list(online)
        )

    async def commit(self) -> None:
        await self.conn.execute("COMMIT")

    async def rollback(self) -> None:
        await self.conn.execute("ROLLBACK")
