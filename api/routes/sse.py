"""`GET /rooms/{room}/events`: a room's messages as Server-Sent Events, resuming after
Last-Event-ID. An SSE stream is a hub subscriber like a socket, minus presence."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api.deps import CHECKED_INPUT, CurrentPrincipal, ServicesDep
from api.errors import ValidationFailed, error_responses
from api.principal import Principal
from api.protocol import MAX_SEQ, Close
from api.protocol import server as frames

router = APIRouter(
    tags=["rooms"],
    dependencies=CHECKED_INPUT,
    responses=error_responses(401, 403, 404, 422, 503),
)
# A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0
_CLOSED = (-1, "")


class SseSubscriber:
    counts_for_presence = False
    ref = "sse"  # never a signal's sender: SSE streams only read

    def __init__(self, principal: Principal, queue_size: int) -> None:
        self.tenant_id = principal.tenant_id
        self.user_id = principal.user_id
        self.username = principal.username
        self.session_id = principal.session_id
        self.queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(queue_size)
        self.closed = False

    def push(self, seq: int, text: str) -> None:
        if seq == 0 or self.closed:
            return  # presence, joined, broadcasts: not part of the message stream
        try:
            self.queue.put_nowait((seq, text))
        except asyncio.QueueFull:
            self.close_soon(Close.SLOW_CONSUMER)  # the browser reconnects with Last-Event-ID

    def offer(self, text: str) -> None:
        """Signals are not part of the message stream."""

    async def push_wait(self, seq: int, text: str) -> None:
        if not self.closed:
            await self.queue.put((seq, text))

    def close_soon(self, close: Close) -> None:
        """An SSE stream has no close code: it ends, and the browser reconnects."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(_CLOSED)

    def removed_from(self, room: str) -> None:
        self.close_soon(Close.REMOVED)


def _seq_of(last_event_id: str) -> int:
    """Last-Event-ID as a seq: ASCII digits only (`isdigit` also accepts `²`)."""
    text = last_event_id.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_SEQ:
        raise ValidationFailed("Last-Event-ID must be a message seq")
    return int(text)


def _event(seq: int, frame: str) -> str:
    data = frames.encode(frames.message_of_frame(frame))
    return f"id: {seq}\nevent: message\ndata: {data}\n\n"


def _end_if_failed(join: asyncio.Future[Any], sub: SseSubscriber) -> None:
    if not join.cancelled() and join.exception() is not None:
        sub.close_soon(Close.SHUTDOWN)  # the browser reconnects with Last-Event-ID


@router.get("/rooms/{room}/events", response_class=StreamingResponse)
async def room_events(
    room: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    last_event_id: str | None = Header(default=None),
    since: int | None = Query(default=None, ge=0),
) -> StreamingResponse:
    target = await services.rooms.get(principal, room)
    if last_event_id is not None:
        since = _seq_of(last_event_id)
    sub = SseSubscriber(principal, services.settings.ws.send_queue_size)
    await services.hub.register(sub)

    async def stream() -> AsyncIterator[str]:
        # The join (and its replay) runs beside the loop that drains the queue: a replay
        # longer than the queue would otherwise wait for room that nobody makes.
        joining = asyncio.ensure_future(
            services.hub.join(
                sub, target.tenant_id, target.id, target.name, since, lambda seq, online: ""
            )
        )
        joining.add_done_callback(lambda task: _end_if_failed(task, sub))
        try:
            yield ": connected\n\n"
            while True:
                try:
                    seq, text = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if (seq, text) == _CLOSED:
                    return
                yield _event(seq, text)
        finally:
            joining.cancel()
            await services.hub.unregister(sub)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
