"""Frames the server sends: one encoder per frame type, and nowhere else builds them.

Frames are encoded to text once (a room message once for all its recipients) and handed to
sockets as strings; these functions are on the hot path, so they build small dicts directly.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson

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
    @property
    def target(self) -> int | None: ...
    @property
    def edited_at(self) -> datetime | None: ...
    @property
    def deleted(self) -> bool: ...


def iso(ts: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as every timestamp on the wire."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode(frame: Any) -> str:
    """Compact JSON, non-ASCII as is. orjson, because a frame is encoded for every message
    (json.dumps took 3.8 us for a `message` frame, orjson 0.4). What orjson refuses, such as
    an integer beyond 64 bits in a signal's `data`, json still writes."""
    try:
        return orjson.dumps(frame).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def message_dict(m: MessageLike) -> dict[str, Any]:
    """The contract's message object: the same over HTTP, SSE and the WebSocket. An `edit`
    or `delete` entry names its `target` (a delete's body is empty); a `user` message shows its
    current state (`edited_at`, or `deleted` with its body erased)."""
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
    if m.target is not None:
        out["target"] = m.target
    if m.edited_at is not None:
        out["edited_at"] = iso(m.edited_at)
    if m.deleted:
        out["deleted"] = True
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


def joined(
    room: str,
    seq: int,
    online: int,
    *,
    last_read: int,
    unread: int,
    first_seq: int | None = None,
) -> str:
    """`first_seq` is given when the requested `since` is older than what is kept: the
    frame then says `truncated` and the replay starts at `first_seq`."""
    frame: dict[str, Any] = {
        "type": "joined",
        "room": room,
        "seq": seq,
        "online": online,
        "last_read": last_read,
        "unread": unread,
    }
    if first_seq is not None:
        frame["truncated"] = True
        frame["first_seq"] = first_seq
    return encode(frame)


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


def signal(room: str, user: str, data_json: str) -> str:
    """`data_json` is already encoded (its size was checked on that text): spliced in, not
    encoded a second time."""
    head = encode({"type": "signal", "room": room, "user": user})
    return f'{head[:-1]},"data":{data_json}}}'


def read(room: str, user: str, seq: int) -> str:
    return encode({"type": "read", "room": room, "user": user, "seq": seq})


def broadcast(broadcast_id: int, body: str, ts: datetime) -> str:
    return encode({"type": "broadcast", "id": broadcast_id, "body": body, "ts": iso(ts)})


def error(code: str, detail: str, ref: Any = None, **extra: Any) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail, **extra}
    if ref is not None:
        frame["ref"] = ref
    return encode(frame)
