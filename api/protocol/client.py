"""Frames a client sends: one discriminated union on "type", validated once per frame."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api.rules import UNSTORABLE_TEXT, has_unstorable_text, json_may_hold_unstorable_text

ClientMsgId = Annotated[str, Field(min_length=1, max_length=128)]
MAX_SEQ = 2**62  # the largest seq (or id) accepted as input: far beyond any room, inside a bigint
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
RoomRef = Annotated[str, Field(min_length=1, max_length=64)]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    ref: str | int | None = Field(
        default=None, description="Echoed in the `ack` or `error` this frame causes."
    )


class AuthFrame(_Frame):
    """First frame of an unauthenticated socket, or a fresh token on a live one."""

    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=4096)


class JoinFrame(_Frame):
    """Join a room; with `since`, replay every message after that seq first."""

    type: Literal["join"]
    room: RoomRef
    since: Seq | None = None


class LeaveFrame(_Frame):
    type: Literal["leave"]
    room: RoomRef


class SendFrame(_Frame):
    """Store a message in a joined room; acked after commit. `client_msg_id` makes retries
    idempotent."""

    type: Literal["send"]
    room: RoomRef
    body: Any = None  # checked by the room service, so a bad body is `body_invalid`
    client_msg_id: ClientMsgId | None = None


class PingFrame(_Frame):
    type: Literal["ping"]


class SignalFrame(_Frame):
    """An ephemeral event (typing, a cursor) for the room's other connections: never stored."""

    type: Literal["signal"]
    room: RoomRef
    data: Any = None


class ReadFrame(_Frame):
    """Move this user's read position in a room forward to `seq`."""

    type: Literal["read"]
    room: RoomRef
    seq: Seq


class EditFrame(_Frame):
    """Replace the body of one's own message: stored as the room's next entry."""

    type: Literal["edit"]
    room: RoomRef
    seq: Annotated[int, Field(ge=1, le=MAX_SEQ)]
    body: Any = None  # checked by the room service, as for `send`


class DeleteFrame(_Frame):
    """Delete a message (its sender, or an admin): stored as the room's next entry."""

    type: Literal["delete"]
    room: RoomRef
    seq: Annotated[int, Field(ge=1, le=MAX_SEQ)]


ClientFrame = Annotated[
    AuthFrame
    | JoinFrame
    | LeaveFrame
    | SendFrame
    | PingFrame
    | SignalFrame
    | ReadFrame
    | EditFrame
    | DeleteFrame,
    Field(discriminator="type"),
]
client_frame_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


class FrameRejected(Exception):
    """A frame that is not valid JSON or not a valid client frame: (code, detail)."""

    def __init__(self, code: str, detail: str, ref: str | int | None = None) -> None:
        self.code = code
        self.detail = detail
        self.ref = ref  # when the frame was readable enough to have one
        super().__init__(detail)


def decode_client_frame(text: str) -> ClientFrame:
    try:
        frame = client_frame_adapter.validate_json(text)
    except ValidationError as exc:
        raise FrameRejected(*_describe(exc)) from None
    if json_may_hold_unstorable_text(text) and has_unstorable_text(frame.model_dump()):
        code = "body_invalid" if isinstance(frame, SendFrame | EditFrame) else "invalid_frame"
        raise FrameRejected(code, UNSTORABLE_TEXT, frame.ref)
    return frame


def _describe(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors(include_url=False)[0]
    kind = err["type"]
    if kind == "union_tag_invalid":
        given = err.get("input")
        name = given.get("type") if isinstance(given, dict) else None
        return "unknown_type", f"unknown frame type {name!r}"
    if kind == "json_invalid":
        return "invalid_frame", "the frame is not valid JSON"
    if kind == "union_tag_not_found":
        return "invalid_frame", "the frame needs a string `type`"
    where = ".".join(str(p) for p in err["loc"][1:]) or "frame"
    return "invalid_frame", f"{where}: {err['msg']}"
