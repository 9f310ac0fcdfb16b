"""Frames the server sends: one encoder per frame type, and nowhere else builds them.

Frames are encoded to text once (a room message once for all its recipients) and handed to
sockets as strings; these functions are on the hot path, so they build small dicts directly.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

PresenceEvent = Literal["join", "leave"]


class MessageLike(Protocol):
    """Anything shaped like a stored message (repository.MessageRow, say)."""

    @property
    def room(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def sender(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def client_msg_id(self) -> str | None: ...


def iso(ts: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as every timestamp on the wire."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def message_dict(m: MessageLike) -> dict[str, Any]:
    """The contract's message object: the same over HTTP, SSE and the WebSocket."""
    out: dict[str, Any] = {
        "room": m.room,
        "seq": m.seq,
        "sender": m.sender,
        "body": m.body,
        "ts": iso(m.ts),
        "kind": m.kind,
    }
    if m.client_msg_id is not None:
        out["client_msg_id"] = m.client_msg_id
    return out


def message(m: MessageLike) -> str:
    return encode({"type": "message", **message_dict(m)})


def message_of_frame(frame: str) -> dict[str, Any]:
    """The message object inside an encoded `message` frame (for SSE, which sends it bare)."""
    decoded: dict[str, Any] = json.loads(frame)
    decoded.pop("type", None)
    return decoded


def ready(*, user: str, tenant: str, role: str, expires_at: int) -> str:
    return encode(
        {"type": "ready", "user": user, "tenant": tenant, "role": role, "expires_at": expires_at}
    )


def joined(room: str, seq: int, online: int) -> str:
    return encode({"type": "joined", "room": room, "seq": seq, "online": online})


def left(room: str, reason: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "left", "room": room}
    if reason is not None:
        frame["reason"] = reason
    return encode(frame)


def ack(room: str, seq: int, client_msg_id: str | None, ref: Any = None) -> str:
    frame: dict[str, Any] = {
        "type": "ack",
        "room": room,
        "seq": seq,
        "client_msg_id": client_msg_id,
    }
    if ref is not None:
        frame["ref"] = ref
    return encode(frame)


PONG = encode({"type": "pong"})


def presence(room: str, user: str, event: PresenceEvent, online: int) -> str:
    return encode(
        {"type": "presence", "room": room, "user": user, "event": event, "online": online}
    )


def broadcast(broadcast_id: int, body: str, ts: datetime) -> str:
    return encode({"type": "broadcast", "id": broadcast_id, "body": body, "ts": iso(ts)})


def error(code: str, detail: str, ref: Any = None, **extra: Any) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail, **extra}
    if ref is not None:
        frame["ref"] = ref
    return encode(frame)
