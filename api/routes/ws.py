"""`/ws` and `/ws/rooms/{room}`: authenticate once, then read frames until the socket ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from api import metrics
from api.auth import ClientGone, WsAuthFailed, authenticate_websocket, close_reason
from api.connection import Connection
from api.errors import (
    APIError,
    CloseCode,
    CloseReason,
    InvalidToken,
    LimitExceeded,
    NotJoined,
    infrastructure_error,
)
from api.schemas import (
    AuthFrame,
    ClientFrame,
    JoinFrame,
    LeaveFrame,
    PingFrame,
    SendFrame,
    client_frame_adapter,
    encode,
    error_frame,
)
from api.services import Services, get_services

router = APIRouter()
log = logging.getLogger("switchboard.ws")
PONG = encode({"type": "pong"})
MAX_INFLIGHT_SENDS = 256  # past this, stop reading the socket until commits catch up


@router.websocket("/ws")
async def ws_endpoint(websocket: WebSocket) -> None:
    await serve_socket(websocket, None)


@router.websocket("/ws/rooms/{room}")
async def ws_room_endpoint(websocket: WebSocket, room: str) -> None:
    await serve_socket(websocket, room)


async def close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code, reason)


async def serve_socket(ws: WebSocket, auto_join: str | None) -> None:
    services = get_services(ws)
    await ws.accept()
    try:
        principal = await authenticate_websocket(ws, services.auth)
    except WsAuthFailed as exc:
        await close(ws, CloseCode.POLICY, exc.reason)
        return
    except ClientGone:
        return
    conn = Connection(ws, principal, services.settings.ws.send_queue_size)
    try:
        await services.hub.register(conn)
    except LimitExceeded:
        await close(ws, CloseCode.POLICY, CloseReason.TOO_MANY_SOCKETS)
        return
    metrics.CONNECTIONS.inc()
    conn.set_principal(principal)
    conn.push(0, encode(conn.ready_frame()))
    conn.start_writer()
    try:
        await FrameHandler(conn, services).read_loop(auto_join)
    finally:
        conn.finish()
        metrics.CONNECTIONS.dec()
        await services.hub.unregister(conn)


_TYPE_ERRORS = {"union_tag_invalid": "unknown_type"}


def describe_invalid(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors(include_url=False)[0]
    code = _TYPE_ERRORS.get(err["type"], "invalid_frame")
    if code == "unknown_type":
        return code, f"unknown frame type {err.get('input', {}).get('type')!r}" if isinstance(
            err.get("input"), dict
        ) else "unknown frame type"
    where = ".".join(str(p) for p in err["loc"][1:]) or "frame"
    if err["type"] == "json_invalid":
        return code, "the frame is not valid JSON"
    if err["type"] == "union_tag_not_found":
        return code, "the frame needs a string `type`"
    return code, f"{where}: {err['msg']}"


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
                self.conn.close_soon(CloseCode.NORMAL, CloseReason.IDLE)
                continue  # the close frame is on its way; the disconnect ends the loop
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self.error("invalid_frame", "binary frames are not part of the protocol")
                continue
            try:
                frame = client_frame_adapter.validate_json(text)
            except ValidationError as exc:
                self.error(*describe_invalid(exc))
                continue
            await self.dispatch(frame)

    def error(self, code: str, detail: str, ref: Any = None, **extra: Any) -> None:
        self.conn.push(0, error_frame(code, detail, ref, **extra))

    async def dispatch(self, frame: ClientFrame) -> None:
        try:
            if isinstance(frame, SendFrame):
                await self.on_send(frame)
            elif isinstance(frame, PingFrame):
                self.conn.push(0, PONG)
            elif isinstance(frame, JoinFrame):
                await self.on_join(frame)
            elif isinstance(frame, LeaveFrame):
                await self.on_leave(frame)
            elif isinstance(frame, AuthFrame):
                await self.on_auth(frame)
        except APIError as exc:
            self.error(exc.code, exc.detail, frame.ref, **exc.extra)
        except Exception as exc:
            mapped = infrastructure_error(exc)
            if mapped is not None:
                self.error(mapped.code, mapped.detail, frame.ref)
                return
            log.exception("frame %s failed", type(frame).__name__)
            self.error("internal", "the server failed to handle this frame", frame.ref)

    async def on_send(self, frame: SendFrame) -> None:
        """Validated now; stored by the persister while this socket goes on reading, so one
        client's burst shares group commits. Acks follow in send order."""
        joined = self.conn.rooms.get(frame.room)
        if joined is None:
            raise NotJoined(f"join {frame.room!r} before sending to it")
        future = self.s.rooms.enqueue_post(
            self.conn.principal, joined[0], frame.body, frame.client_msg_id
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
                self.error("internal", "the server failed to store this message", frame.ref)
            else:
                self.error(mapped.code, mapped.detail, frame.ref)
            return
        stored = future.result()[0]
        ack: dict[str, Any] = {
            "type": "ack",
            "room": frame.room,
            "seq": stored.message.seq,
            "client_msg_id": frame.client_msg_id,
        }
        if frame.ref is not None:
            ack["ref"] = frame.ref
        self.conn.push(0, encode(ack))

    async def on_join(self, frame: JoinFrame) -> None:
        conn = self.conn
        if (
            frame.room not in conn.rooms
            and len(conn.rooms) >= self.s.settings.limits.rooms_per_socket
        ):
            raise LimitExceeded("this socket has joined the maximum number of rooms")
        room = await self.s.rooms.get_for_join(conn.principal, frame.room)

        def joined(seq: int, online: int) -> str:
            return encode({"type": "joined", "room": room.name, "seq": seq, "online": online})

        fan = await self.s.hub.join(conn, room.tenant_id, room.id, room.name, frame.since, joined)
        conn.rooms[room.name] = (room, fan)

    async def on_leave(self, frame: LeaveFrame) -> None:
        joined = self.conn.rooms.pop(frame.room, None)
        if joined is None:
            raise NotJoined(f"not in room {frame.room!r}")
        await self.s.hub.leave(self.conn, joined[1])
        self.conn.push(0, encode({"type": "left", "room": frame.room}))

    async def on_auth(self, frame: AuthFrame) -> None:
        """Re-authentication on a live socket: same user, new expiry. A bad token closes
        the socket with 1008, as it would at connect."""
        try:
            principal = await self.s.auth.from_access_token(frame.token)
            if (principal.tenant_id, principal.user_id) != (self.conn.tenant_id, self.conn.user_id):
                raise InvalidToken("the token belongs to another user")
        except APIError as exc:
            self.conn.close_soon(CloseCode.POLICY, close_reason(exc))
            return
        self.conn.set_principal(principal)
        self.conn.push(0, encode(self.conn.ready_frame()))
