"""HTTP request and response bodies (the WebSocket's frames live in api.protocol)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from api.protocol import MAX_SEQ, ClientMsgId
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


class DirectWith(BaseModel):
    with_: str = Field(alias="with", serialization_alias="with")


class RoomOut(BaseModel):
    name: str
    private: bool
    created_at: datetime
    last_seq: int
    first_seq: int = Field(1, description="the oldest seq still kept (retention)")
    retention_days: int | None = Field(None, description="None: the server's setting")
    last_read: int = 0
    unread: int = Field(0, description="readable entries after last_read, up to a cap")
    dm: DirectWith | None = Field(None, description="set for a direct room")


class RoomPatchIn(BaseModel):
    retention_days: int | None = Field(ge=0, le=36500)


class DirectIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)


class DirectOut(BaseModel):
    name: str
    with_: str = Field(alias="with", serialization_alias="with")
    last_seq: int
    last_read: int
    unread: int


class ReadIn(BaseModel):
    seq: int = Field(ge=0, le=MAX_SEQ)


class ReadOut(BaseModel):
    room: str
    last_read: int


class EditIn(BaseModel):
    body: str


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
    kind: Literal["user", "broadcast", "edit", "delete"]
    client_msg_id: str | None = None
    target: int | None = Field(None, description="the seq an `edit` or `delete` acts on")
    edited_at: str | None = Field(None, description="a `user` message's last edit")
    deleted: bool | None = Field(None, description="a deleted `user` message (body erased)")


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


# Integrations --------------------------------------------------------------------
class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    scopes: list[Literal["publish", "tokens", "admin"]] = Field(min_length=1)


class ApiKeyOut(BaseModel):
    id: int
    name: str
    scopes: list[str]
    created_at: datetime


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="shown this once; only its hash is stored")


class MintIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    create: bool = False
    ttl: int | None = Field(None, ge=60, le=24 * 3600, description="seconds; default 15 min")


class MintedToken(BaseModel):
    access_token: str
    expires_in: int


class TicketMintIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    create: bool = False


class PublishItem(BaseModel):
    room: str = Field(min_length=1, max_length=64)
    body: str
    client_msg_id: ClientMsgId | None = None


class PublishIn(BaseModel):
    messages: list[PublishItem] = Field(min_length=1)


class PublishResult(BaseModel):
    room: str
    seq: int | None = None
    error: str | None = None
    detail: str | None = None


class PublishOut(BaseModel):
    results: list[PublishResult]


class WebhookIn(BaseModel):
    url: str = Field(min_length=1, max_length=2000)
    events: list[str] = Field(min_length=1)


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]


class WebhookCreated(WebhookOut):
    secret: str = Field(description="signs every delivery (Standard Webhooks); shown once")


class DeliveryOut(BaseModel):
    event_id: str
    type: str
    attempts: int
    status: Literal["pending", "delivered", "failed"]
    last_error: str | None = None
    delivered_at: datetime | None = None


class RedeliverIn(BaseModel):
    event_id: str = Field(min_length=1, max_length=200)
