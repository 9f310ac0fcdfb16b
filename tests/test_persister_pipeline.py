"""The persister's overlapping transactions keep queue order (api.pipeline).

A fake store stands in for Postgres where timing must be forced: it holds room locks until
commit or rollback, assigns seqs under them and makes them visible only at commit, exactly
the parts of Postgres the order depends on. The real database is covered end to end by the
messaging tests and the bench.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import asyncpg
import pytest

from api.batch import Stored
from api.persister import Persister
from api.repository import MessageStore


class FakeStore:
    """Room rows with a last_seq, locked per transaction like `SELECT … FOR UPDATE`."""

    def __init__(self, rooms: dict[int, asyncio.Lock], last_seq: dict[int, int]) -> None:
        self.rooms, self.last_seq = rooms, last_seq
        self.held: list[int] = []
        self.pending: dict[int, int] = {}
        self.conflict_once: set[str] = set()  # bodies whose first append conflicts
        self.hold_append: asyncio.Event | None = None  # appends wait for this when set
        self.appending = asyncio.Event()
        self.committed = asyncio.Event()

    async def lock_rooms(self, tenant_id: int, room_ids: Sequence[int], begin: bool) -> None:
        for room_id in sorted(set(room_ids)):
            await self.rooms[room_id].acquire()
            self.held.append(room_id)

    async def existing(self, tenant_id: int, keys: Sequence[Any]) -> dict[Any, Any]:
        return {}

    async def append(self, tenant_id: int, messages: Sequence[Any], ts: datetime) -> dict[int, int]:
        self.appending.set()
        if self.hold_append is not None:
            await self.hold_append.wait()
        conflicting = {m.body for m in messages} & self.conflict_once
        if conflicting:
            self.conflict_once -= conflicting
            raise asyncpg.UniqueViolationError("duplicate key")
        base: dict[int, int] = {}
        for m in messages:
            seen = self.pending.get(m.room_id, self.last_seq[m.room_id])
            base.setdefault(m.room_id, seen)
            self.pending[m.room_id] = seen + 1
        return base

    async def wants_unseen(self, tenant_id: int) -> bool:
        return False

    async def commit(self) -> None:
        self.last_seq.update(self.pending)
        self.committed.set()
        self._end()

    async def rollback(self) -> None:
        self._end()

    def _end(self) -> None:
        self.pending = {}
        for room_id in self.held:
            self.rooms[room_id].release()
        self.held = []


class Published:
    """The broker: records what is published, in order."""

    def __init__(self) -> None:
        self.seqs: list[tuple[int, int]] = []
        self.hold_first: asyncio.Event | None = None  # the first publish waits for this

    async def publish_many(self, items: Sequence[tuple[str, str]]) -> None:
        hold, self.hold_first = self.hold_first, None
        if hold is not None:
            await hold.wait()
        for channel, event in items:
            room_id = int(channel.rsplit(":", 1)[-1])
            self.seqs.append((room_id, int(event.split(" ", 2)[1])))  # "message <seq> <frame>"


def _persister(stores: list[FakeStore], broker: Published) -> Persister:
    persister = Persister(cast(Any, None), cast(Any, broker), writers=len(stores))
    for writer, store in zip(persister._writers, stores, strict=True):

        async def fixed(store: FakeStore = store) -> MessageStore:
            return cast(MessageStore, store)

        writer.store = fixed  # type: ignore[method-assign]
    return persister


def _send(persister: Persister, room_id: int, body: str) -> asyncio.Future[tuple[Stored, bool]]:
    return persister.enqueue(
        tenant_id=1, room_id=room_id, room=f"r{room_id}", sender_id=1, sender="u", body=body
    )


def _answer_order(futures: list[asyncio.Future[Any]]) -> list[int]:
    order: list[int] = []
    for i, future in enumerate(futures):

        def answered(_: asyncio.Future[Any], i: int = i) -> None:
            order.append(i)

        future.add_done_callback(answered)
    return order


def _shared_rooms(*room_ids: int) -> tuple[dict[int, asyncio.Lock], dict[int, int]]:
    return {r: asyncio.Lock() for r in room_ids}, dict.fromkeys(room_ids, 0)


@pytest.mark.parametrize("first_conflicts", [False, True])
def test_a_batch_behind_a_rolled_back_one_rolls_back_and_keeps_queue_order(
    first_conflicts: bool,
) -> None:
    """Batch A is in Postgres when batch B forms for the same room. B waits for A's locks;
    if A then rolls back (a conflict), B must not commit the seqs it was given in between:
    it rolls back too and is written after A, so the room's seqs follow the queue."""

    async def main() -> tuple[list[int], list[int], list[tuple[int, int]]]:
        rooms, last_seq = _shared_rooms(7)
        stores = [FakeStore(rooms, last_seq), FakeStore(rooms, last_seq)]
        broker = Published()
        persister = _persister(stores, broker)
        release = asyncio.Event()
        stores[0].hold_append = release
        if first_conflicts:
            stores[0].conflict_once = {"a1"}
        persister.start()
        futures = [_send(persister, 7, f"a{i}") for i in range(3)]
        await stores[0].appending.wait()  # batch A holds room 7 and is in its statement
        futures += [_send(persister, 7, f"b{i}") for i in range(3)]
        for _ in range(5):  # batch B forms and queues behind A's lock
            await asyncio.sleep(0)
        assert stores[1].held == []
        order = _answer_order(futures)
        release.set()
        results = await asyncio.gather(*futures)
        await persister.stop()
        return [r[0].message.seq for r in results], order, broker.seqs

    seqs, order, published = asyncio.run(main())
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert order == [0, 1, 2, 3, 4, 5]
    assert published == [(7, s) for s in range(1, 7)]


def test_a_batch_for_other_rooms_runs_its_statement_alongside_but_commits_after() -> None:
    """The overlap is real: a batch for another room does not wait for the earlier batch's
    locks and runs its statement while the earlier one is still in its own. It commits,
    answers and publishes only after the earlier batch."""

    async def main() -> tuple[bool, int, bool, list[int], list[tuple[int, int]]]:
        rooms, last_seq = _shared_rooms(1, 2)
        stores = [FakeStore(rooms, last_seq), FakeStore(rooms, last_seq)]
        broker = Published()
        persister = _persister(stores, broker)
        release = asyncio.Event()
        stores[0].hold_append = release
        persister.start()
        futures = [_send(persister, 1, "a")]
        await stores[0].appending.wait()
        futures.append(_send(persister, 2, "b"))
        order = _answer_order(futures)
        await asyncio.wait_for(stores[1].appending.wait(), 5)
        for _ in range(5):
            await asyncio.sleep(0)
        committed_early = last_seq[2]
        slow_publish = broker.hold_first = asyncio.Event()  # A's publish takes a while
        release.set()
        await asyncio.wait_for(stores[1].committed.wait(), 5)
        for _ in range(5):
            await asyncio.sleep(0)
        b_answered_before_a_published = futures[1].done()
        slow_publish.set()
        await asyncio.gather(*futures)
        await persister.stop()
        overlapped = stores[1].appending.is_set()
        return overlapped, committed_early, b_answered_before_a_published, order, broker.seqs

    overlapped, committed_early, b_early, order, published = asyncio.run(main())
    assert overlapped and committed_early == 0
    assert not b_early
    assert order == [0, 1]
    assert published == [(1, 1), (2, 1)]


def test_a_failed_batch_releases_the_next_one() -> None:
    """A batch that fails for good (the database is gone) answers its senders with an error;
    the batch behind it is written afterwards and nothing waits forever."""

    async def main() -> tuple[list[Any], dict[int, int]]:
        rooms, last_seq = _shared_rooms(3)
        stores = [FakeStore(rooms, last_seq), FakeStore(rooms, last_seq)]
        persister = _persister(stores, Published())
        release = asyncio.Event()
        stores[0].hold_append = release

        async def broken(*_: Any) -> dict[int, int]:
            stores[0].appending.set()
            await release.wait()
            raise ConnectionResetError("gone")

        stores[0].append = broken  # type: ignore[method-assign,assignment]
        persister.start()
        futures = [_send(persister, 3, "a")]
        await stores[0].appending.wait()
        futures.append(_send(persister, 3, "b"))
        for _ in range(5):
            await asyncio.sleep(0)
        release.set()
        done = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 5)
        await persister.stop()
        return done, last_seq

    done, last_seq = asyncio.run(main())
    assert getattr(done[0], "code", None) == "unavailable"
    assert not isinstance(done[1], BaseException)
    assert cast(tuple[Stored, bool], done[1])[0].message.seq == 1
    assert last_seq == {3: 1}
