"""Batched, ordered writes of messages to Postgres (group commit).

Whatever is queued while a commit is in flight goes into the next transaction together,
so a busy server pays one commit for many messages (how a batch is written: api.batch).
Only after the commit are the senders answered and the messages published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from api import events, metrics
from api.batch import BatchWriter, Draft, Stored
from api.broker import Broker, room_channel
from api.db import Database
from api.errors import APIError, BodyInvalid, RoomNotFound, Unavailable
from api.repository import MessageKind, MessageStore

log = logging.getLogger("switchboard.persister")
# A batch that conflicts with another worker's (same client_msg_id, or rooms locked in
# another order) is retried: the retry finds the stored row. Past this, it is `unavailable`.
CONFLICT_ATTEMPTS = 3


def _refusal(exc: Exception, what: str = "this message") -> APIError:
    """A message the database refuses: its room is gone (deleted since it was sent), or a
    value it cannot store."""
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return RoomNotFound()
    return BodyInvalid(f"the database cannot store {what}")


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
        self.writer = BatchWriter(broker)

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
                    results = await self.writer.transaction(drafts, store)
                    break
                except (asyncpg.DataError, asyncpg.ForeignKeyViolationError) as exc:
                    raise _refusal(exc, "one of these messages") from exc
                except (asyncpg.IntegrityConstraintViolationError, asyncpg.DeadlockDetectedError):
                    if attempt == CONFLICT_ATTEMPTS - 1:
                        raise Unavailable("could not store the batch; retry") from None
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
                results = await self.writer.transaction(batch, await self._writer())
                break
            except (asyncpg.DataError, asyncpg.ForeignKeyViolationError) as exc:
                # One row the database refuses must not fail everyone else's: store the
                # halves apart until the bad row is alone, and refuse only that one.
                if len(batch) == 1:
                    log.warning("the database refused a message: %s", exc)
                    self._fail(batch, _refusal(exc))
                    return
                middle = len(batch) // 2
                await self._write(batch[:middle])
                await self._write(batch[middle:])
                return
            except (asyncpg.IntegrityConstraintViolationError, asyncpg.DeadlockDetectedError):
                # Another worker stored the same client_msg_id (or locked rooms in another
                # order) at the same moment: the rollback undid our seq reservation, and the
                # next attempt finds the stored row.
                if attempt == CONFLICT_ATTEMPTS - 1:
                    log.exception("persister batch kept conflicting")
                    self._fail(batch, Unavailable("could not store the message; retry"))
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
