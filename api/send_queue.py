"""The bounded send queue behind every socket."""

from __future__ import annotations

import asyncio
from collections import deque


class SendQueue:
    """A bounded FIFO with one waiting reader: lighter than asyncio.Queue (no putters, no
    join bookkeeping), which matters at tens of thousands of sockets."""

    __slots__ = ("_items", "_limit", "_space", "_waiter")

    def __init__(self, limit: int) -> None:
        self._items: deque[str] = deque()
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None  # the writer, waiting for an item
        self._space: asyncio.Future[None] | None = None  # a replay, waiting for room

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, text: str) -> bool:
        """False when full."""
        if len(self._items) >= self._limit:
            return False
        self._items.append(text)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    async def put(self, text: str) -> None:
        """Wait for room, then queue (history replay)."""
        while len(self._items) >= self._limit:
            self._space = asyncio.get_running_loop().create_future()
            try:
                await self._space
            finally:
                self._space = None
        self.put_nowait(text)

    async def get(self) -> str:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        space = self._space
        if space is not None and not space.done():
            space.set_result(None)
        return self._items.popleft()
