"""HTTP request and response bodies (the WebSocket's frames live in api.protocol)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from api.protocol import ClientMsgId
from api.rules import RoomName, Username, check_new_password, check_password_length

# A bound on the request field (422 above it); below it, anything that is not one of our
# tokens (api.security.MAX_OPAQUE_TOKEN_CHARS) is a 401 like any other bad token.
REFRESH_FIELD_MAX_CHARS = 300


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
    refresh_token: str = Field(min_length=1, max_length=REFRESH_FIELD_MAX_CHARS)


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
