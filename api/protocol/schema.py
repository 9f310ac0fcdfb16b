"""Server frames as pydantic models: for the AsyncAPI document only (the hot path uses the
encoders in server.py). A test validates every encoder's output against its model, so the
two cannot drift apart."""

from __future__ import annotations

from typing import Any, Literal

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
    last_read: int = Field(description="This user's read position in the room.")
    unread: int = Field(description="`user`/`broadcast` entries after last_read (capped).")
    truncated: Literal[True] | None = Field(
        default=None, description="The `since` asked for entries retention has deleted."
    )
    first_seq: int | None = Field(
        default=None, description="With truncated: the oldest entry kept; the replay starts here."
    )


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
    kind: Literal["user", "broadcast", "edit", "delete"]
    client_msg_id: str | None = None
    target: int | None = Field(default=None, description="The seq an edit or delete acts on.")
    edited_at: str | None = Field(default=None, description="A user message's last edit.")
    deleted: Literal[True] | None = Field(
        default=None, description="A deleted user message (its body is erased)."
    )


class SignalEventFrame(_ServerFrame):
    """An ephemeral event from another connection in the room: never stored or replayed."""

    type: Literal["signal"]
    room: str
    user: str
    data: Any


class ReadPositionFrame(_ServerFrame):
    """A read position moved: this user's own (other devices), or, in a private room, another
    member's (a read receipt)."""

    type: Literal["read"]
    room: str
    user: str
    seq: int


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
    SignalEventFrame,
    ReadPositionFrame,
    BroadcastFrame,
    PongFrame,
    ErrorFrame,
)
