"""`/ws` and `/ws/rooms/{room}` (reached through the socket lane, routes/socket_lane.py):
authenticate once, then read frames until the socket ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, assert_never

from fastapi import WebSocket

from api import metrics
from api.connection import Connection
from api.deps import services_of
from api.errors import (
    APIError,
    Internal,
    InvalidToken,
    LimitExceeded,
    NotJoined,
    infrastructure_error,
)
from api.protocol import (
    AuthFrame,
    ClientFrame,
    Close,
    DeleteFrame,
    EditFrame,
    FrameRejected,
    JoinFrame,
    LeaveFrame,
    PingFrame,
    ReadFrame,
    SendFrame,
    SignalFrame,
    decode_client_frame,
)
from api.protocol import server as frames
from api.repository import MessageRow, RoomRow
from api.services import Services
from api.ws_auth import ClientGone, WsAuthFailed, auth_close, authenticate_websocket

log = logging.getLogger("switchboard.ws")
# Past this many sends awaiting their commit, a socket is not read until commits catch up:
# the persister's queue (and memory) stays bounded by sockets x this.
MAX_INFLIGHT_SENDS = 256


async def close(ws: WebSocket, close: Close) -> None:
    with contextlib.suppress(Exception):
        await ws.close(close.code, close.reason)


async def serve_socket(ws: WebSocket, auto_join: str | None) -> None:
    """A reconnect storm (a restart, a network blip) opens thousands of sockets at once, each
    costing a database round trip to authenticate: past `ws.max_opening` of them at a time,
    a socket is closed at once with 1013 `overloaded`, and its client retries after a
    jittered backoff instead of everyone waiting in one queue."""
    services = services_of(ws)
    hub = services.hub
    await ws.accept()
    if hub.opening >= services.settings.ws.max_opening:
        metrics.SOCKETS_SHED.inc()
        await close(ws, Close.OVERLOADED)
        return
    hub.opening += 1
    try:
        principal = await authenticate_websocket(ws, services.auth)
    except WsAuthFailed as exc:
        await close(ws, exc.close)
        return
    except ClientGone:
        return
    finally:
        hub.opening -= 1
    conn = Connection(ws, principal, services.settings.ws.send_queue_size, hub.write_round)
    try:
        await services.hub.register(conn)
    except LimitExceeded:
        await close(ws, Close.TOO_MANY_SOCKETS)
        return
    metrics.CONNECTIONS.inc()
    conn.set_principal(principal)
    conn.push(0, conn.ready_frame())
    try:
        await FrameHandler(conn, services).read_loop(auto_join)
    finally:
        conn.finish()
        metrics.CONNECTIONS.dec()
        await services.hub.unregister(conn)


class FrameHandler:
    """Reads and answers the frames of one authenticated socket, in order. It runs in the
    socket's own ASGI task and returns when the socket ends (a close_soon ends it too)."""

    __slots__ = ("conn", "drained", "idle_timeout", "inflight", "s")

    def __init__(self, conn: Connection, services: Services) -> None:
        self.conn = conn
        self.s = services
        self.idle_timeout = services.settings.ws.idle_timeout or None
        self.inflight = 0
        self.drained: asyncio.Event | None = None  # made when a socket first has too many

    async def read_loop(self, auto_join: str | None) -> None:
        if auto_join is not None:
            await self.dispatch(JoinFrame(type="join", room=auto_join))
        receive = self.conn.ws.receive
        while True:
            try:
                if self.idle_timeout is None:
                    message = await receive()
                else:
                    message = await asyncio.wait_for(receive(), self.idle_timeout)
            except TimeoutError:
                self.conn.close_soon(Close.IDLE)
                continue  # the close frame is on its way; the disconnect ends the loop
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await self.reply(
                    frames.error("invalid_frame", "binary frames are not part of the protocol")
                )
                continue
            try:
                frame = decode_client_frame(text)
            except FrameRejected as exc:
                await self.reply(frames.error(exc.code, exc.detail, exc.ref))
                continue
            await self.dispatch(frame)

    async def reply(self, text: str) -> None:
        """An answer to a frame just read: it waits for room in the send queue, so a client
        that sends faster than its answers are written (a burst of pings) is slowed down
        instead of being closed as a slow consumer; and the writer gets to run."""
        await self.conn.push_wait(0, text)

    def error(self, code: str, detail: str, ref: Any = None, **extra: Any) -> None:
        """An error outside the read loop (a send that failed to commit)."""
        self.conn.push(0, frames.error(code, detail, ref, **extra))

    async def dispatch(self, frame: ClientFrame) -> None:
        try:
            await self.handle(frame)
        except APIError as exc:
            await self.reply(frames.error(exc.code, exc.detail, frame.ref, **exc.extra))
        except Exception as exc:
            mapped = infrastructure_error(exc) or Internal("the server failed to handle this frame")
            if isinstance(mapped, Internal):
                log.exception("frame %s failed", type(frame).__name__)
            await self.reply(frames.error(mapped.code, mapped.detail, frame.ref))

    async def handle(self, frame: ClientFrame) -> None:
        """One branch per client frame type; a type added to the union but not handled here
        fails the type check (assert_never)."""
        if isinstance(frame, SendFrame):
            await self.on_send(frame)
        elif isinstance(frame, PingFrame):
            await self.reply(frames.PONG)
        elif isinstance(frame, JoinFrame):
            await self.on_join(frame)
        elif isinstance(frame, LeaveFrame):
            await self.on_leave(frame)
        elif isinstance(frame, SignalFrame):
            await self.s.signals.send(
                self.conn.principal, self.joined(frame.room), self.conn.ref, frame.data
            )
        elif isinstance(frame, ReadFrame):
            await self.on_read(frame)
        elif isinstance(frame, EditFrame):
            room = self.joined(frame.room)
            self.acked(
                frame, await self.s.amend.edit(self.conn.principal, room, frame.seq, frame.body)
            )
        elif isinstance(frame, DeleteFrame):
            room = self.joined(frame.room)
            self.acked(frame, await self.s.amend.delete(self.conn.principal, room, frame.seq))
        elif isinstance(frame, AuthFrame):
            await self.on_auth(frame)
        else:
            assert_never(frame)

    def joined(self, name: str) -> RoomRow:
        """A room this socket has joined (its access was checked at the join)."""
        joined = self.conn.rooms.get(name)
        if joined is None:
            raise NotJoined(f"join {name!r} first")
        return joined[0]

    def acked(self, frame: EditFrame | DeleteFrame, entry: MessageRow) -> None:
        self.conn.push(0, frames.ack(entry.room, entry.seq, None, frame.ref))

    async def on_send(self, frame: SendFrame) -> None:
        """Validated now; stored by the persister while this socket goes on reading, so one
        client's burst shares group commits. Acks follow in send order."""
        future = self.s.rooms.enqueue_post(
            self.conn.principal, self.joined(frame.room), frame.body, frame.client_msg_id
        )
        self.inflight += 1
        future.add_done_callback(lambda f: self.on_stored(frame, f))
        if self.inflight >= MAX_INFLIGHT_SENDS:
            self.drained = self.drained or asyncio.Event()
            self.drained.clear()
            await self.drained.wait()

    def on_stored(self, frame: SendFrame, future: asyncio.Future[Any]) -> None:
        self.inflight -= 1
        if self.drained is not None and self.inflight < MAX_INFLIGHT_SENDS:
            self.drained.set()
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            mapped = exc if isinstance(exc, APIError) else infrastructure_error(exc)
            if mapped is None:
                log.error("send failed", exc_info=exc)
                mapped = Internal("the server failed to store this message")
            self.error(mapped.code, mapped.detail, frame.ref)
            return
        stored = future.result()[0]
        self.conn.push(
            0, frames.ack(frame.room, stored.message.seq, frame.client_msg_id, frame.ref)
        )

    async def on_join(self, frame: JoinFrame) -> None:
        conn = self.conn
        if (
            frame.room not in conn.rooms
            and len(conn.rooms) >= self.s.settings.limits.rooms_per_socket
        ):
            raise LimitExceeded("this socket has joined the maximum number of rooms")
        room, read = await self.s.rooms.get_for_join(conn.principal, frame.room)
        # A `since` older than what retention kept: say so, and replay from what is left.
        truncated = frame.since is not None and frame.since < room.first_seq - 1

        def joined(seq: int, online: int) -> str:
            return frames.joined(
                room.name,
                seq,
                online,
                last_read=read.last_read,
                unread=read.unread,
                first_seq=room.first_seq if truncated else None,
            )

        # (what retention removed is not replayed, from Postgres or from memory)
        since = room.first_seq - 1 if truncated else frame.since
        fan = await self.s.hub.join(conn, room.tenant_id, room.id, room.name, since, joined)
        conn.rooms[room.name] = (room, fan)

    async def on_leave(self, frame: LeaveFrame) -> None:
        joined = self.conn.rooms.pop(frame.room, None)
        if joined is None:
            raise NotJoined(f"not in room {frame.room!r}")
        await self.s.hub.leave(self.conn, joined[1])
        self.conn.push(0, frames.left(frame.room))

    async def on_read(self, frame: ReadFrame) -> None:
        """Joined or not (a client may clear a badge without joining): access is checked."""
        joined = self.conn.rooms.get(frame.room)
        room = joined[0] if joined else await self.s.rooms.get(self.conn.principal, frame.room)
        last_read, moved = await self.s.reads.advance(self.conn.principal, room, frame.seq)
        if not moved:  # nothing to announce: answer this socket with where it stands
            await self.reply(frames.read(room.name, self.conn.username, last_read))

    async def on_auth(self, frame: AuthFrame) -> None:
        """Re-authentication on a live socket: same user, new expiry. A bad token closes
        the socket with 1008, as it would at connect."""
        try:
            principal = await self.s.auth.from_access_token(frame.token)
            if (principal.tenant_id, principal.user_id) != (
                self.conn.tenant_id,
                self.conn.user_id,
            ):
                raise InvalidToken("the token belongs to another user")
        except APIError as exc:
            self.conn.close_soon(auth_close(exc))
            return
        self.conn.set_principal(principal)
        self.conn.push(0, self.conn.ready_frame())
