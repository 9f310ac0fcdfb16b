"""One authenticated WebSocket: its bounded send queue, its writer, its expiry timer.

Everything the server says to a socket goes through the queue, so frames keep their order
and a client that stops reading only ever fills its own queue. A full queue closes the
socket with 1013 (the client resumes with `since`). A socket costs two tasks: the ASGI task,
which reads frames, and the writer; memory per idle socket is measured in bench/.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

from starlette.websockets import WebSocket

from api import metrics
from api.auth import Principal
from api.errors import CloseCode, CloseReason
from api.hub import RoomFanout
from api.repository import RoomRow
from api.schemas import encode


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


class Connection:
    __slots__ = (
        "_closer",
        "_expiry",
        "closing",
        "principal",
        "queue",
        "rooms",
        "session_id",
        "tenant_id",
        "user_id",
        "username",
        "writer",
        "ws",
    )
    counts_for_presence = True

    def __init__(self, ws: WebSocket, principal: Principal, queue_size: int) -> None:
        self.ws = ws
        self.principal = principal
        self.tenant_id = principal.tenant_id
        self.user_id = principal.user_id
        self.username = principal.username
        self.session_id = principal.session_id
        self.queue = SendQueue(queue_size)
        self.rooms: dict[str, tuple[RoomRow, RoomFanout]] = {}
        self.closing: tuple[int, str] | None = None
        self.writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    # Subscriber -------------------------------------------------------------------
    def push(self, seq: int, text: str) -> None:
        if self.closing is None and not self.queue.put_nowait(text):
            metrics.SLOW_CONSUMERS.inc()
            self.close_soon(CloseCode.TRY_AGAIN, CloseReason.SLOW_CONSUMER)

    async def push_wait(self, seq: int, text: str) -> None:
        """For history replay: wait for room in the queue instead of overflowing it."""
        if self.closing is None:
            await self.queue.put(text)

    def close_soon(self, code: int, reason: str) -> None:
        """Stop writing and send the close frame now; the reader then sees the disconnect."""
        if self.closing is not None:
            return
        self.closing = (int(code), str(reason))
        if self.writer is not None:
            self.writer.cancel()
        self._closer = asyncio.ensure_future(self._close())

    async def _close(self) -> None:
        assert self.closing is not None
        with contextlib.suppress(Exception):
            await self.ws.close(*self.closing)

    def removed_from(self, room: str) -> None:
        if self.rooms.pop(room, None) is not None:
            self.push(0, encode({"type": "left", "room": room, "reason": "removed"}))

    # lifetime -----------------------------------------------------------------------
    def start_writer(self) -> None:
        self.writer = asyncio.ensure_future(self._write_loop())
        self.writer.add_done_callback(_retrieve)

    def set_principal(self, principal: Principal) -> None:
        """A fresh credential: a new expiry deadline (closes with 1008 when it passes)."""
        self.principal = principal
        self.session_id = principal.session_id
        if self._expiry is not None:
            self._expiry.cancel()
        loop = asyncio.get_running_loop()
        delay = max(principal.expires_at - time.time(), 0.0)
        self._expiry = loop.call_at(
            loop.time() + delay, self.close_soon, CloseCode.POLICY, CloseReason.EXPIRED_TOKEN
        )

    def finish(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self.writer is not None:
            self.writer.cancel()

    async def _write_loop(self) -> None:
        send = self.ws.send
        get = self.queue.get
        # One message dict for the socket's life: the server consumes it before send()
        # returns, and an allocation per delivery is what makes the garbage collector run.
        message: dict[str, Any] = {"type": "websocket.send", "text": ""}
        while True:
            message["text"] = await get()
            await send(message)

    def ready_frame(self) -> dict[str, Any]:
        p = self.principal
        return {
            "type": "ready",
            "user": p.username,
            "tenant": p.tenant,
            "role": p.role,
            "expires_at": p.expires_at,
        }


def _retrieve(task: asyncio.Task[None]) -> None:
    """The writer ends by cancellation or a dead socket; the reader handles both."""
    if not task.cancelled():
        task.exception()
