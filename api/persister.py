"""Batched, ordered writes of messages to Postgres (group commit).

Whatever is queued while a commit is in flight goes into the next transaction together,
so a busy server pays one commit for many messages. A batch is a few round trips however
many rooms it touches (see repository.MessageStore): lock the rooms in id order, look up
retried client_msg_ids, advance every room's last_seq and insert every row in one statement,
commit. Only then are the senders answered and the messages published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from api import events, metrics
from api.broker import Broker, room_channel, tenant_channel
from api.db import Database
from api.errors import BodyInvalid, Unavailable
from api.protocol import server as frames
from api.repository import MessageKind, MessageRow, MessageStore

log = logging.getLogger("switchboard.persister")
# A batch that conflicts with another worker's (same client_msg_id, or rooms locked in
# another order) is retried: the retry finds the stored row. Past this, it is `unavailable`.
CONFLICT_ATTEMPTS = 3


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


class Persister:
    def __init__(
        self,
        db: Database,
        broker: Broker,
        *,
        batch_max: int = 500,
        batch_wait: float = 0.0,
        drain_seconds: float = 10.0,
    ) -> None:
        self.db = db
        self.broker = broker
        self.batch_max = batch_max
        self.batch_wait = batch_wait
        self.drain_seconds = drain_seconds
        self._queue: asyncio.Queue[Draft | None] = asyncio.Queue()  # None: stop
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None
        self._store: MessageStore | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="persister")

    async def stop(self) -> None:
        """Write and publish everything queued so far (bounded by drain_seconds), then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.drain_seconds)
        except TimeoutError:
            log.error("persister did not drain within %.0f s", self.drain_seconds)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = self._store = None

    def enqueue(
        self,
        *,
        tenant_id: int,
        room_id: int,
        room: str,
        sender_id: int | None,
        sender: str,
        body: str,
        kind: MessageKind = MessageKind.USER,
        client_msg_id: str | None = None,
        private: bool = False,
    ) -> asyncio.Future[tuple[Stored, bool]]:
        """Queue one message; the future gives (stored, created) after the commit. created is
        False for a retry of a client_msg_id already stored, which returns the original.
        Futures resolve in queue order."""
        future: asyncio.Future[tuple[Stored, bool]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(
            Draft(
                tenant_id,
                room_id,
                room,
                sender_id,
                sender,
                body,
                kind,
                client_msg_id,
                private,
                future,
            )
        )
        return future

    async def store_together(self, drafts: list[Draft]) -> list[tuple[Stored, bool]]:
        """Store a batch in one transaction of its own (POST /publish), beside the queue:
        (stored, created) for each draft, in order; then publish what is new."""
        results: dict[int, tuple[Stored, bool]] = {}
        async with self.db.raw() as conn:
            store = MessageStore(conn)
            for attempt in range(CONFLICT_ATTEMPTS):
                try:
                    results = await self._transaction(drafts, store)
                    break
                except (asyncpg.IntegrityConstraintViolationError, asyncpg.DeadlockDetectedError):
                    if attempt == CONFLICT_ATTEMPTS - 1:
                        raise Unavailable("could not store the batch; retry") from None
                except asyncpg.DataError as exc:
                    raise BodyInvalid("the database cannot store one of these messages") from exc
        ordered = [results[id(d)] for d in drafts]
        metrics.MESSAGES_IN.inc(sum(created for _, created in ordered))
        await self._publish([stored for stored, created in ordered if created])
        return ordered

    def _drain(self, batch: list[Draft]) -> tuple[list[Draft], bool]:
        """More of what is queued, up to batch_max; and whether the stop mark was reached."""
        while len(batch) < self.batch_max and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            if self.batch_wait > 0 and self._queue.qsize() < self.batch_max:
                await asyncio.sleep(self.batch_wait)
            batch, stopping = self._drain([first])
            await self._write(batch)
            if stopping:
                return

    async def _write(self, batch: list[Draft]) -> None:
        started = time.perf_counter()
        results: dict[int, tuple[Stored, bool]] = {}
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                results = await self._transaction(batch, await self._writer())
                break
            except (asyncpg.IntegrityConstraintViolationError, asyncpg.DeadlockDetectedError):
                # Another worker stored the same client_msg_id (or locked rooms in another
                # order) at the same moment: the rollback undid our seq reservation, and the
                # next attempt finds the stored row.
                if attempt == CONFLICT_ATTEMPTS - 1:
                    log.exception("persister batch kept conflicting")
                    self._fail(batch, Unavailable("could not store the message; retry"))
                    return
            except asyncpg.DataError as exc:
                # One row the database refuses must not fail everyone else's: store the
                # halves apart until the bad row is alone, and refuse only that one.
                if len(batch) == 1:
                    log.warning("the database refused a message: %s", exc)
                    self._fail(batch, BodyInvalid("the database cannot store this message"))
                    return
                middle = len(batch) // 2
                await self._write(batch[:middle])
                await self._write(batch[middle:])
                return
            except Exception as exc:
                log.warning("persister batch of %d failed: %s", len(batch), exc)
                await self._drop_writer()
                self._fail(batch, Unavailable("the database is unavailable; retry"))
                return
        metrics.PERSIST_LATENCY.observe(time.perf_counter() - started)
        metrics.PERSIST_BATCH.observe(len(batch))
        created = []
        for draft in batch:
            result = results[id(draft)]
            if draft.future is not None and not draft.future.done():
                draft.future.set_result(result)
            if result[1]:
                created.append(result[0])
        metrics.MESSAGES_IN.inc(len(created))
        await self._publish(created)

    async def _publish(self, created: list[Stored]) -> None:
        if not created:
            return
        try:  # in commit order, which is seq order within each room
            await self.broker.publish_many(
                [
                    (
                        room_channel(s.tenant_id, s.room_id),
                        events.message_event(s.message.seq, s.frame),
                    )
                    for s in created
                ]
            )
        except Exception as exc:  # stored is stored: hubs catch up from Postgres
            log.warning("publishing %d stored messages failed: %s", len(created), exc)

    @staticmethod
    def _fail(batch: list[Draft], exc: Exception) -> None:
        for draft in batch:
            if draft.future is not None and not draft.future.done():
                draft.future.set_exception(exc)

    async def _writer(self) -> MessageStore:
        """One pooled connection kept for writing; replaced after any failure."""
        if self._store is None:
            self._conn = await self.db.engine.connect()
            raw = await self._conn.get_raw_connection()
            self._store = MessageStore(raw.driver_connection)
        return self._store

    async def _drop_writer(self) -> None:
        conn, self._conn, self._store = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def _transaction(
        self, batch: list[Draft], store: MessageStore
    ) -> dict[int, tuple[Stored, bool]]:
        by_tenant: defaultdict[int, list[Draft]] = defaultdict(list)
        for draft in batch:
            by_tenant[draft.tenant_id].append(draft)
        results: dict[int, tuple[Stored, bool]] = {}
        now = datetime.now(UTC)
        await store.begin()
        try:
            for tenant_id, drafts in by_tenant.items():
                await store.lock_rooms(tenant_id, [d.room_id for d in drafts])
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
