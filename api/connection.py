"""One authenticated WebSocket: its bounded send queue, its expiry timer.

Everything the server says to a socket goes through the queue, so frames keep their order
and a client that stops reading only ever fills its own queue. A full queue closes the
socket with 1013 (the client resumes with `since`). The queue is emptied by the write round
at the end of the event loop's turn (one write per socket); only when the socket cannot
take a write now (flow control) does a writer task start, which waits, and it ends once the
queue is empty. An idle socket costs one task, the ASGI task that reads its frames; memory
per idle socket is measured in bench/.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable

from starlette.websockets import WebSocket

from api import metrics
from api.fanout import RoomFanout
from api.principal import Principal
from api.protocol import Close
from api.protocol import server as frames
from api.repository import RoomRow
from api.send_queue import SendQueue, WriteRound, WriteTexts
from api.transport import SEND_TEXTS

# A socket with this many frames still to write is behind: signals to it are dropped.
SIGNAL_BACKLOG = 64


class Connection:
    __slots__ = (
        "_closer",
        "_draining",
        "_expiry",
        "_round",
        "_send_texts",
        "closing",
        "principal",
        "queue",
        "ref",
        "rooms",
        "session_id",
        "tenant_id",
        "user_id",
        "username",
        "writer",
        "ws",
    )
    counts_for_presence = True

    def __init__(
        self, ws: WebSocket, principal: Principal, queue_size: int, write_round: WriteRound
    ) -> None:
        self.ws = ws
        self.principal = principal
        self.tenant_id = principal.tenant_id
        self.user_id = principal.user_id
        self.username = principal.username
        self.session_id = principal.session_id
        self.queue = SendQueue(queue_size)
        self.ref = secrets.token_hex(8)
        self.rooms: dict[str, tuple[RoomRow, RoomFanout]] = {}
        self.closing: Close | None = None
        self.writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._round = write_round
        self._send_texts: WriteTexts | None = ws.scope.get("extensions", {}).get(SEND_TEXTS)
        self._draining = False  # in the write round, or a writer task is running

    # Subscriber -------------------------------------------------------------------
    def push(self, seq: int, text: str) -> None:
        if self.closing is None:
            if self.queue.put_nowait(text):
                self._drain_soon()
            else:
                metrics.SLOW_CONSUMERS.inc()
                self.close_soon(Close.SLOW_CONSUMER)

    def offer(self, text: str) -> None:
        if self.closing is None:
            if len(self.queue) < SIGNAL_BACKLOG:
                self.queue.put_nowait(text)
                self._drain_soon()
            else:
                metrics.SIGNALS_DROPPED.inc()

    async def push_wait(self, seq: int, text: str) -> None:
        """For history replay: wait for room in the queue instead of overflowing it."""
        if self.closing is None:
            await self.queue.put(text)
            self._drain_soon()

    def close_soon(self, close: Close) -> None:
        """Stop writing and send the close frame now; the reader then sees the disconnect."""
        if self.closing is not None:
            return
        self.closing = close
        if self.writer is not None:
            self.writer.cancel()
        self._closer = asyncio.ensure_future(self._close())

    async def _close(self) -> None:
        assert self.closing is not None
        with contextlib.suppress(Exception):
            await self.ws.close(self.closing.code, self.closing.reason)

    def removed_from(self, room: str) -> None:
        if self.rooms.pop(room, None) is not None:
            self.push(0, frames.left(room, reason="removed"))

    # lifetime -----------------------------------------------------------------------
    def _drain_soon(self) -> None:
        if not self._draining:
            self._draining = True
            self._round.add(self)

    def flush(self, encode: Callable[[str], bytes]) -> None:
        """The write round's turn: everything queued in one write, or a writer that waits."""
        if self.closing is not None:
            return  # frames queued after the close are dropped (the writer was cancelled)
        send_texts = self._send_texts
        if send_texts is not None and self.queue.write_all(send_texts, encode):
            self._draining = False
            return
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
        self._expiry = loop.call_at(loop.time() + delay, self.close_soon, Close.EXPIRED_TOKEN)

    def finish(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self.writer is not None:
            self.writer.cancel()

    async def _write_loop(self) -> None:
        """One frame at a time through ASGI `send`, which waits while the client is slow."""
        send = self.ws.send
        queue = self.queue
        while queue:
            await send({"type": "websocket.send", "text": queue.popleft()})
        self.writer = None
        self._draining = False

    def ready_frame(self) -> str:
        p = self.principal
        return frames.ready(user=p.username, tenant=p.tenant, role=p.role, expires_at=p.expires_at)


def _retrieve(task: asyncio.Task[None]) -> None:
    """The writer ends by cancellation or a dead socket; the reader handles both."""
    if not task.cancelled():
        task.exception()
