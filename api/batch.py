"""One batch of messages, written in one transaction: the persister's queue and
`POST /publish` both come here.

A batch costs one round trip however many tenants and rooms it touches (see
repository.MessageStore): the database locks the rooms in id order, finds retried
client_msg_ids, advances every room's last_seq and inserts every row (with the senders'
read positions and the `message.created` outbox rows), and commits. A batch with messages
in private rooms also adds their `message.unseen` rows, before its commit.
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
from api.repository import Appended, MessageKind, MessageRow, MessageStore

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
        """One call stores the batch and is its own transaction, unless a message is in a
        private room: its `message.unseen` rows are added before the commit, in a
        transaction opened around the call."""
        results: Results = {}
        if not batch:
            return results
        unique, repeats = _without_repeats(batch)
        now = datetime.now(UTC)
        if not any(d.private for d in unique):
            appended = await store.append(unique, now)
        else:
            await store.begin()
            try:
                appended = await store.append(unique, now)
                await self._outbox_unseen(store, unique, appended)
                await store.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    await store.rollback()
                raise
        for draft, a in zip(unique, appended, strict=True):
            results[id(draft)] = _stored(draft, a, now)
        for draft, original in repeats:
            results[id(draft)] = (results[id(original)][0], False)
        return results

    async def _outbox_unseen(
        self, store: MessageStore, drafts: list[Draft], appended: list[Appended]
    ) -> None:
        by_tenant: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
        for draft, a in zip(drafts, appended, strict=True):
            if draft.private and a.original is None and a.wants_unseen:
                by_tenant[draft.tenant_id].append((draft.room_id, a.seq))
        for tenant_id, stored in sorted(by_tenant.items()):
            await store.outbox_unseen(tenant_id, stored, await self._online(tenant_id))

    async def _online(self, tenant_id: int) -> list[str]:
        """Who has a socket open in the tenant, on any worker. Unknown (the broker is away):
        nobody, so a push is sent rather than missed."""
        try:
            return list(await self.broker.presence(tenant_channel(tenant_id)))
        except Exception as exc:
            log.warning("presence unavailable for message.unseen: %s", exc)
            return []


def _without_repeats(batch: list[Draft]) -> tuple[list[Draft], list[tuple[Draft, Draft]]]:
    """The batch without a later draft of the same (sender, client_msg_id): each of those
    is paired with the first, whose result it shares."""
    unique: list[Draft] = []
    repeats: list[tuple[Draft, Draft]] = []
    first_with_key: dict[tuple[int, str], Draft] = {}
    for draft in batch:
        key = draft.idempotency_key
        if key is None:
            unique.append(draft)
        elif (first := first_with_key.get(key)) is not None:
            repeats.append((draft, first))
        else:
            first_with_key[key] = draft
            unique.append(draft)
    return unique, repeats


def _stored(draft: Draft, a: Appended, now: datetime) -> tuple[Stored, bool]:
    """(what to answer and publish, created): a retry answers with the original."""
    if a.original is not None:
        return Stored(draft.tenant_id, a.room_id, a.original, frames.message(a.original)), False
    message = MessageRow(
        draft.room, a.seq, draft.sender, draft.body, now, draft.kind, draft.client_msg_id
    )
    return Stored(draft.tenant_id, draft.room_id, message, frames.message(message)), True
