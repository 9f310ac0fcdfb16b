"""Server frames as pydantic models: for the AsyncAPI document only (the hot path uses the
encoders in server.py). A test validates every encoder's output against its model, so the
two cannot drift apart."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _ServerFrame(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadyFrame(_ServerFrame):
    """The socket is authenticated (also the answer to an in-band `auth`)."""

    type: Literal["ready"]
    user: str
    tenant: str
    role: Literal["member", "admin"]
    expires_at: int = Field(description="Epoch seconds: when this socket's credential expires.")


class JoinedFrame(_ServerFrame):
    type: Literal["joined"]
    room: str
    seq: int = Field(description="The room's last seq when joined; a replay ends here.")
    online: int


class LeftFrame(_ServerFrame):
    type: Literal["left"]
    room: str
    reason: Literal["removed"] | None = None


class AckFrame(_ServerFrame):
    """The message is committed; sent once per `send` (again for a retried client_msg_id)."""

    type: Literal["ack"]
    room: str
    seq: int
    client_msg_id: str | None
    ref: str | int | None = None


class MessageFrame(_ServerFrame):
    type: Literal["message"]
    room: str
    seq: int = Field(description="1, 2, 3, … per room, with no gaps.")
    sender: str
    body: str
    ts: str = Field(description="ISO 8601, UTC.")
    kind: Literal["user", "broadcast"]
    client_msg_id: str | None = None


class PresenceFrame(_ServerFrame):
    type: Literal["presence"]
    room: str
    user: str
    event: Literal["join", "leave"]
    online: int


class BroadcastFrame(_ServerFrame):
    type: Literal["broadcast"]
    id: int
    body: str
    ts: str


class PongFrame(_ServerFrame):
    type: Literal["pong"]


class ErrorFrame(_ServerFrame):
    type: Literal["error"]
    code: str
    detail: str
    ref: str | int | None = None
    retry_after: float | None = Field(default=None, description="With rate_limited.")


SERVER_FRAMES: tuple[type[_ServerFrame], ...] = (
    ReadyFrame,
    JoinedFrame,
    LeftFrame,
    AckFrame,
    MessageFrame,
    PresenceFrame,
    BroadcastFrame,
    PongFrame,
    ErrorFrame,
)
