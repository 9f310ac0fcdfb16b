"""One authenticated WebSocket: its bounded send queue, its writer, its expiry timer.

Everything the server says to a socket goes through the queue, so frames keep their order
and a client that stops reading only ever fills its own queue. A full queue closes the
socket with 1013 (the client resumes with `since`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.websockets import WebSocket

from api import metrics
from api.auth import Principal
from api.errors import CloseCode, CloseReason
from api.hub import RoomFanout
from api.repository import RoomRow
from api.schemas import encode


class Connection:
    counts_for_presence = True

    def __init__(self, ws: WebSocket, principal: Principal, queue_size: int) -> None:
        self.ws = ws
        self.principal = principal
        self.tenant_id = principal.tenant_id
        self.user_id = principal.user_id
        self.username = principal.username
        self.session_id = principal.session_id
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.rooms: dict[str, tuple[RoomRow, RoomFanout]] = {}
        self.closing: tuple[int, str] | None = None
        self.closed = asyncio.Event()
        self._expiry: asyncio.TimerHandle | None = None

    # Subscriber -------------------------------------------------------------------
    def push(self, seq: int, text: str) -> None:
        if self.closing is not None:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            metrics.SLOW_CONSUMERS.inc()
            self.close_soon(CloseCode.TRY_AGAIN, CloseReason.SLOW_CONSUMER)

    async def push_wait(self, seq: int, text: str) -> None:
        """For history replay: wait for room in the queue instead of overflowing it."""
        if self.closing is None:
            await self.queue.put(text)

    def close_soon(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (int(code), str(reason))
            self.closed.set()

    def removed_from(self, room: str) -> None:
        if self.rooms.pop(room, None) is not None:
            self.push(0, encode({"type": "left", "room": room, "reason": "removed"}))

    # lifetime -----------------------------------------------------------------------
    def set_principal(self, principal: Principal) -> None:
        """A fresh credential: a new expiry deadline (closes with 1008 when it passes)."""
        self.principal = principal
        self.session_id = principal.session_id
        if self._expiry is not None:
            self._expiry.cancel()
        loop = asyncio.get_running_loop()
        delay = max(principal.expires_at - time.time(), 0.0)
        self._expiry = loop.call_at(loop.time() + delay, self.close_soon, CloseCode.POLICY,
                                    CloseReason.EXPIRED_TOKEN)

    def cancel_timers(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()

    async def write_loop(self) -> None:
        send = self.ws.send
        get = self.queue.get
        while True:
            text = await get()
            await send({"type": "websocket.send", "text": text})

    def ready_frame(self) -> dict[str, Any]:
        p = self.principal
        return {"type": "ready", "user": p.username, "tenant": p.tenant, "role": p.role,
                "expires_at": p.expires_at}
