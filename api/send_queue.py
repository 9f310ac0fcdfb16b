"""The bounded send queue behind every socket, and the write round that empties them.

A fan-out puts the same frame on a thousand queues; a batch from the persister puts several
frames on each. Writing each frame as it arrives costs one system call per frame per socket,
which is where a fan-out spent most of its time. Instead, a queue that receives its first
frame joins the current write round, and at the end of the event loop's turn each socket
gets everything queued for it in one write, every frame serialized once for all sockets.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("switchboard.send")
# Writes queued texts as frames and empties the deque (True), or leaves it alone (False).
WriteTexts = Callable[[deque[str], Callable[[str], bytes]], bool]


class SendQueue:
    """A bounded FIFO: lighter than asyncio.Queue (no getters, no join bookkeeping), which
    matters at tens of thousands of sockets."""

    __slots__ = ("_items", "_limit", "_space")

    def __init__(self, limit: int) -> None:
        self._items: deque[str] = deque()
        self._limit = limit
        self._space: asyncio.Future[None] | None = None  # a replay, waiting for room

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, text: str) -> bool:
        """False when full."""
        if len(self._items) >= self._limit:
            return False
        self._items.append(text)
        return True

    async def put(self, text: str) -> None:
        """Wait for room, then queue (history replay)."""
        while len(self._items) >= self._limit:
            self._space = asyncio.get_running_loop().create_future()
            try:
                await self._space
            finally:
                self._space = None
        self._items.append(text)

    def popleft(self) -> str:
        text = self._items.popleft()
        self._made_room()
        return text

    def write_all(
        self,
        write: WriteTexts,
        encode: Callable[[str], bytes],
    ) -> bool:
        """Hand every queued frame to `write`, which empties the queue and says True, or
        leaves it alone and says False."""
        if write(self._items, encode):
            self._made_room()
            return True
        return False

    def _made_room(self) -> None:
        space = self._space
        if space is not None and not space.done():
            space.set_result(None)


class Flushable(Protocol):
    def flush(self, encode: Callable[[str], bytes]) -> None: ...


class WriteRound:
    """The sockets with frames queued in this turn of the event loop: flushed together at
    its end (one `call_soon`), sharing one cache of serialized frames."""

    __slots__ = ("_cache", "_dirty", "_frame")

    def __init__(self, frame: Callable[[str], bytes]) -> None:
        self._dirty: list[Flushable] = []
        self._cache: dict[str, bytes] = {}
        self._frame = frame  # a text frame's bytes on the wire

    def add(self, sock: Flushable) -> None:
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self._run)
        self._dirty.append(sock)

    def encode(self, text: str) -> bytes:
        frame = self._cache.get(text)
        if frame is None:
            frame = self._cache[text] = self._frame(text)
        return frame

    def _run(self) -> None:
        dirty, self._dirty = self._dirty, []
        encode = self.encode
        for sock in dirty:
            try:
                sock.flush(encode)
            except Exception:  # one broken socket must not stall the others' writes
                log.exception("write round: a socket's flush failed")
        self._cache.clear()
