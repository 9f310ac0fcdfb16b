"""One batch of messages, written in one transaction: the persister's queue and
`POST /publish` both come here.

A batch costs a few round trips however many rooms it touches (see
repository.MessageStore): per tenant, lock the rooms in id order, look up retried
client_msg_ids, advance every room's last_seq and insert every row (with the senders' read
positions and the `message.created` outbox rows) in one statement, add `message.unseen` rows
for private rooms; then commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from api.broker import Broker, tenant_channel
from api.protocol import server as frames
from api.repository import MessageKind, MessageRow, MessageStore

log = logging.getLogger("switchboard.persister")


@dataclass(frozen=True, slots=True)
class Stored:
    tenant_id: int
    room_id: int
    message: MessageRow
    frame: str  # the `message` frame, encoded once for every recipient


@dataclass(slots=True)
class Draft:
    tenant_id: int
    room_id: int
    room: str
    sender_id: int | None
    sender: str
    body: str
    kind: MessageKind
    client_msg_id: str | None
    private: bool = False  # a private room's message may be `message.unseen` by a member
    future: asyncio.Future[tuple[Stored, bool]] | None = field(default=None, repr=False)

    @property
    def idempotency_key(self) -> tuple[int, str] | None:
        if self.client_msg_id is None or self.sender_id is None:
            return None
        return (self.sender_id, self.client_msg_id)


Results = dict[int, tuple[Stored, bool]]  # by id() of each draft


class BatchWriter:
    """Writes one batch, of any tenants and rooms, on the connection it is handed."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker  # for presence (message.unseen), read before the commit

    async def transaction(self, batch: list[Draft], store: MessageStore) -> Results:
        by_tenant: defaultdict[int, list[Draft]] = defaultdict(list)
        for draft in batch:
            by_tenant[draft.tenant_id].append(draft)
        results: dict[int, tuple[Stored, bool]] = {}
        if not batch:
            return results
        now = datetime.now(UTC)
        try:
            # tenants (then rooms) in id order: concurrent batches never deadlock
            for i, (tenant_id, drafts) in enumerate(sorted(by_tenant.items())):
                # BEGIN travels with the first tenant's locks: one round trip fewer
                await store.lock_rooms(tenant_id, [d.room_id for d in drafts], begin=i == 0)
                results.update(await self._store_tenant(store, tenant_id, drafts, now))
            await store.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await store.rollback()
            raise
        return results

    async def _store_tenant(
        self, store: MessageStore, tenant_id: int, drafts: list[Draft], now: datetime
    ) -> dict[int, tuple[Stored, bool]]:
        results: dict[int, tuple[Stored, bool]] = {}
        keys = [k for d in drafts if (k := d.idempotency_key) is not None]
        existing = await store.existing(tenant_id, keys) if keys else {}
        fresh: list[Draft] = []
        first_with_key: dict[tuple[int, str], Draft] = {}
        repeats: list[tuple[Draft, Draft]] = []
        for draft in drafts:
            key = draft.idempotency_key
            if key is not None and key in existing:
                found = existing[key]
                results[id(draft)] = (
                    Stored(tenant_id, found.room_id, found.message, frames.message(found.message)),
                    False,
                )
            elif key is not None and key in first_with_key:
                repeats.append((draft, first_with_key[key]))
            else:
                fresh.append(draft)
                if key is not None:
                    first_with_key[key] = draft
        if fresh:
            base = await store.append(tenant_id, fresh, now)
            next_seq = {room_id: seq + 1 for room_id, seq in base.items()}
            for draft in fresh:
                seq = next_seq[draft.room_id]
                next_seq[draft.room_id] = seq + 1
                message = MessageRow(
                    draft.room, seq, draft.sender, draft.body, now, draft.kind, draft.client_msg_id
                )
                results[id(draft)] = (
                    Stored(tenant_id, draft.room_id, message, frames.message(message)),
                    True,
                )
        for draft, original in repeats:
            results[id(draft)] = (results[id(original)][0], False)
        private = [(d.room_id, results[id(d)][0].message.seq) for d in fresh if d.private]
        if private and await store.wants_unseen(tenant_id):
            await store.outbox_unseen(tenant_id, private, await self._online(tenant_id))
        return results

    async def _online(self, tenant_id: int) -> list[str]:
        """Who has a socket open in the tenant, on any worker. Unknown (the broker is away):
        nobody, so a push is sent rather than missed."""
        try:
            return list(await self.broker.presence(tenant_channel(tenant_id)))
        except Exception as exc:
            log.warning("presence unavailable for message.unseen: %s", exc)
            return []
