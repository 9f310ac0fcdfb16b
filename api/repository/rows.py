"""The values repositories return: small frozen dataclasses and enums, never bare tuples."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"


class MessageKind(StrEnum):
    USER = "user"
    BROADCAST = "broadcast"
    EDIT = "edit"  # an entry that replaces the body of `target`
    DELETE = "delete"  # an entry that erases `target`


# The kinds that are messages to read (the others act on one): what `unread` counts.
READABLE_KINDS = (MessageKind.USER.value, MessageKind.BROADCAST.value)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    tenant_id: int
    username: str
    role: str
    password_hash: str
    disabled: bool
    created_at: datetime

    @property
    def is_service(self) -> bool:
        """An API key's `@<name>` user (the sender of what the key publishes)."""
        return self.username.startswith("@")


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session joined with its user and tenant: everything a Principal needs."""

    session_id: uuid.UUID
    tenant_id: int
    tenant_slug: str
    user_id: int
    username: str
    role: str
    live: bool


@dataclass(frozen=True, slots=True)
class SessionSecrets:
    refresh_hash: bytes
    cookie_hash: bytes


@dataclass(frozen=True, slots=True)
class TicketRedemption:
    session_id: uuid.UUID
    fresh: bool  # False: the ticket existed but had expired


@dataclass(frozen=True, slots=True)
class RoomRow:
    id: int
    tenant_id: int
    name: str
    private: bool
    created_by: int | None
    created_at: datetime
    last_seq: int
    first_seq: int = 1  # the oldest seq still kept (retention)
    retention_days: int | None = None  # None: the global setting
    dm_key: str | None = None  # set for a direct room

    @property
    def is_direct(self) -> bool:
        return self.dm_key is not None


@dataclass(frozen=True, slots=True)
class ReadState:
    """A user's place in a room: the read position and what is unread after it (capped)."""

    last_read: int
    unread: int


@dataclass(frozen=True, slots=True)
class RoomForUser:
    """A room as one user sees it in a listing."""

    room: RoomRow
    read: ReadState
    dm_with: str | None  # the other member's username, for a direct room


@dataclass(frozen=True, slots=True)
class RoomWithMembers:
    room: RoomRow
    members: int


@dataclass(frozen=True, slots=True)
class MessageRow:
    room: str
    seq: int
    sender: str
    body: str
    ts: datetime
    kind: str
    client_msg_id: str | None
    target: int | None = None  # for `edit` and `delete` entries
    edited_at: datetime | None = None  # a `user` message's last edit
    deleted: bool = False  # a `user` message that was deleted (its body is erased)


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[MessageRow]
    has_more: bool


@dataclass(frozen=True, slots=True)
class BroadcastRow:
    id: int
    sender: str
    body: str
    ts: datetime
    rooms: list[str] | None


@dataclass(frozen=True, slots=True)
class BroadcastPage:
    broadcasts: list[BroadcastRow]
    has_more: bool


class ClaimState(StrEnum):
    CLAIMED = "claimed"  # the key is new: do the work, then answer it
    DONE = "done"  # answered within the key's lifetime: return the stored answer
    BUSY = "busy"  # another request holds the key right now


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    state: ClaimState
    answer: dict[str, Any] | None = None


# Mappers from database rows ---------------------------------------------------------


def user_row(row: Any) -> UserRow:
    return UserRow(
        row.id,
        row.tenant_id,
        row.username,
        row.role,
        row.password_hash,
        row.disabled_at is not None,
        row.created_at,
    )


def room_row(row: Any) -> RoomRow:
    """From a SQLAlchemy row or an asyncpg record."""
    r = getattr(row, "_mapping", row)
    return RoomRow(
        r["id"],
        r["tenant_id"],
        r["name"],
        r["private"],
        r["created_by"],
        r["created_at"],
        r["last_seq"],
        r["first_seq"],
        r["retention_days"],
        r["dm_key"],
    )


def message_row(room_name: str, row: Any) -> MessageRow:
    """From a SQLAlchemy row or an asyncpg record (both index by column name)."""
    return MessageRow(
        room_name,
        row["seq"],
        row["sender"],
        row["body"],
        row["created_at"],
        row["kind"],
        row["client_msg_id"],
        row["target"],
        row["edited_at"],
        row["deleted_at"] is not None,
    )


def broadcast_row(row: Any) -> BroadcastRow:
    return BroadcastRow(row.id, row.sender, row.body, row.created_at, row.rooms)


def session_view(row: Any) -> SessionView:
    return SessionView(
        row["id"],
        row["tenant_id"],
        row["slug"],
        row["uid"],
        row["username"],
        row["role"],
        bool(row["live"]),
    )
