"""The order of the persister's overlapping transactions.

The persister keeps more than one batch in flight, so Postgres works on one batch while the
event loop answers the one before and reads the next. Overlap must not change what a
client sees, so every batch takes a `Turn` after the batch before it, and:

- it asks for its room locks only once the batch before holds all of its own: where two
  batches share a room, the later one waits in Postgres and takes the later seqs;
- it commits only once the batch before has committed. If that one rolled back (a
  conflict, a refused row, the database gone), this one rolls back too and is written again
  after it, so a room's seqs still follow the queue;
- it answers its senders and publishes only after the batch before has, so acks and room
  events leave in queue order.

Nothing waits on a later batch, so the chain cannot deadlock.
"""

from __future__ import annotations

import asyncio
from typing import Any


class BatchAbandoned(Exception):
    """The batch before rolled back, so this one did too; it is written again after it."""


class Turn:
    __slots__ = ("_before", "answered", "committed", "locked")

    def __init__(self, before: Turn | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._before = before
        self.locked: asyncio.Future[None] = loop.create_future()
        self.committed: asyncio.Future[bool] = loop.create_future()  # False: rolled back
        self.answered: asyncio.Future[None] = loop.create_future()

    def hold_locks(self) -> None:
        """This batch holds every room lock it needs: the next batch may ask for its own."""
        _settle(self.locked, None)

    async def may_commit(self) -> bool:
        """Whether the batch before committed (waiting for it to decide)."""
        before = self._before
        return before is None or await asyncio.shield(before.committed)

    def settle_commit(self, committed: bool) -> None:
        """This attempt committed or rolled back; only the first outcome counts for the next
        batch, which rolls back after a rollback and waits for `answered`."""
        _settle(self.locked, None)
        _settle(self.committed, committed)

    async def wait_for_before(self) -> None:
        """Until the batch before has answered and published (or given up)."""
        before, self._before = self._before, None
        if before is not None:
            await asyncio.shield(before.answered)

    def finish(self) -> None:
        """Whatever happened, release the next batch (it must never wait forever)."""
        _settle(self.locked, None)
        _settle(self.committed, False)
        _settle(self.answered, None)


def _settle(future: asyncio.Future[Any], value: object) -> None:
    if not future.done():
        future.set_result(value)
