"""HTTP bodies and WebSocket frames. Client frames are one discriminated union on "type",
validated once per frame with a TypeAdapter."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

ROOM_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
MAX_PASSWORD_BYTES = 1024
MIN_PASSWORD_LENGTH = 8

RoomName = Annotated[str, Field(pattern=ROOM_NAME_PATTERN)]
Username = Annotated[str, Field(pattern=USERNAME_PATTERN)]
ClientMsgId = Annotated[str, Field(min_length=1, max_length=128)]
Seq = Annotated[int, Field(ge=0, le=2**62)]


def check_password_length(value: str) -> str:
    """Bounded so that hashing cost is bounded: too long is a 422, never a 500."""
    if len(value.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password must be at most {MAX_PASSWORD_BYTES} bytes")
    return value


def check_new_password(value: str) -> str:
    check_password_length(value)
    if len(value) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if "\x00" in value:
        raise ValueError("password must not contain NUL characters")
    return value


# HTTP bodies -----------------------------------------------------------------
class LoginIn(BaseModel):
    tenant: str = Field(min_length=1, max_length=64)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1)

    _password = field_validator("password")(check_password_length)


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=300)


class MeOut(BaseModel):
    username: str
    tenant: str
    role: str


class TicketOut(BaseModel):
    ticket: str
    expires_in: int


class RoomIn(BaseModel):
    name: RoomName
    private: bool = False


class RoomOut(BaseModel):
    name: str
    private: bool
    created_at: datetime
    last_seq: int


class AdminRoomOut(RoomOut):
    members: int


class MemberIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)


class PostMessageIn(BaseModel):
    body: str
    client_msg_id: ClientMsgId | None = None


class MessageOut(BaseModel):
    room: str
    seq: int
    sender: str
    body: str
    ts: str
    kind: Literal["user", "broadcast"]
    client_msg_id: str | None = None


class HistoryOut(BaseModel):
    messages: list[MessageOut]
    has_more: bool


class PresenceUser(BaseModel):
    username: str
    connections: int


class PresenceOut(BaseModel):
    room: str
    users: list[PresenceUser]


class UserIn(BaseModel):
    username: Username
    password: str
    role: Literal["member", "admin"] = "member"

    _password = field_validator("password")(check_new_password)


class UserOut(BaseModel):
    username: str
    role: str
    disabled: bool
    created_at: datetime


class BroadcastIn(BaseModel):
    body: str
    rooms: list[str] | None = Field(default=None, min_length=1, max_length=100)


class BroadcastAccepted(BaseModel):
    id: int
    recipients: int


class BroadcastOut(BaseModel):
    id: int
    sender: str
    body: str
    ts: str


class BroadcastList(BaseModel):
    broadcasts: list[BroadcastOut]
    has_more: bool


# WebSocket client frames -----------------------------------------------------
class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    ref: str | int | None = None


class AuthFrame(_Frame):
    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=4096)


class JoinFrame(_Frame):
    type: Literal["join"]
    room: str = Field(min_length=1, max_length=64)
    since: Seq | None = None


class LeaveFrame(_Frame):
    type: Literal["leave"]
    room: str = Field(min_length=1, max_length=64)


class SendFrame(_Frame):
    type: Literal["send"]
    room: str = Field(min_length=1, max_length=64)
    body: Any = None
    client_msg_id: ClientMsgId | None = None


class PingFrame(_Frame):
    type: Literal["ping"]


ClientFrame = Annotated[
    AuthFrame | JoinFrame | LeaveFrame | SendFrame | PingFrame, Field(discriminator="type")
]
client_frame_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


# Server frames: encoded by hand once, because they are on the hot path --------
def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def error_frame(code: str, detail: str, ref: Any = None, **extra: Any) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail, **extra}
    if ref is not None:
        frame["ref"] = ref
    return encode(frame)


def message_dict(m: Any) -> dict[str, Any]:
    """The contract's message object, from anything shaped like repository.MessageRow."""
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


def message_frame(m: Any) -> str:
    return encode({"type": "message", **message_dict(m)})
