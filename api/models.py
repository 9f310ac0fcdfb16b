"""The data model. Every tenant-owned row carries tenant_id, and every foreign key
between tenant-owned rows includes it, so a cross-tenant reference cannot exist."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Tenant(Base):
    __tablename__ = "tenant"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = _now()


class User(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), nullable=False
    )
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False, server_default="member")
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        UniqueConstraint("tenant_id", "username"),
        UniqueConstraint("tenant_id", "id"),
        CheckConstraint("role IN ('member', 'admin')", name="role"),
    )


class Session(Base):
    """A login. Refresh tokens and the cookie are `<session id>.<secret>`; only hashes are
    stored, and a refresh secret that is not the current one means reuse."""

    __tablename__ = "auth_session"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    refresh_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    cookie_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["app_user.tenant_id", "app_user.id"], ondelete="CASCADE"
        ),
        Index(None, "tenant_id", "user_id"),
        UniqueConstraint("tenant_id", "id"),
    )


class WsTicket(Base):
    """Single-use WebSocket tickets: stored so a second use fails on any worker."""

    __tablename__ = "ws_ticket"
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "session_id"],
            ["auth_session.tenant_id", "auth_session.id"],
            ondelete="CASCADE",
        ),
        Index(None, "expires_at"),
    )


class LoginThrottle(Base):
    """Failed-login counters per key ("user:<tenant>/<name>" or "addr:<ip>"), fixed window.
    In Postgres so that every worker counts together."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Room(Base):
    __tablename__ = "room"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    private: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    created_at: Mapped[datetime] = _now()
    # "<lower user id>:<higher user id>" for a direct room: one room per pair, by constraint.
    dm_key: Mapped[str | None] = mapped_column(String(64))
    retention_days: Mapped[int | None] = mapped_column(Integer)  # None: the global setting
    first_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="1")
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "dm_key"),
        CheckConstraint("retention_days IS NULL OR retention_days >= 0", name="retention_days"),
        ForeignKeyConstraint(
            ["tenant_id", "created_by"],
            ["app_user.tenant_id", "app_user.id"],
            ondelete="SET NULL (created_by)",
        ),
        CheckConstraint("name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'", name="name_format"),
    )


class Membership(Base):
    __tablename__ = "membership"
    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    room_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "room_id"], ["room.tenant_id", "room.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["app_user.tenant_id", "app_user.id"], ondelete="CASCADE"
        ),
    )


class Message(Base):
    """One room message. (room_id, seq) is unique and is the keyset for history pages."""

    __tablename__ = "message"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    room_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sender_id: Mapped[int | None] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, server_default="user")
    client_msg_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    target: Mapped[int | None] = mapped_column(BigInteger)  # the seq an edit/delete acts on
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("room_id", "seq"),
        ForeignKeyConstraint(
            ["tenant_id", "room_id"], ["room.tenant_id", "room.id"], ondelete="CASCADE"
        ),
        # sender_id has no foreign key: checking one per inserted row cost a quarter of a
        # batch's statement. Users are deleted only with their tenant (a trigger refuses
        # anything else), which takes their messages too.
        Index(
            "uq_message_sender_client_msg_id",
            "tenant_id",
            "sender_id",
            "client_msg_id",
            unique=True,
            postgresql_where=text("client_msg_id IS NOT NULL"),
        ),
        CheckConstraint("kind IN ('user', 'broadcast', 'edit', 'delete')", name="kind"),
        CheckConstraint("(target IS NOT NULL) = (kind IN ('edit', 'delete'))", name="target"),
        Index(
            "ix_message_target", "room_id", "target", postgresql_where=text("target IS NOT NULL")
        ),
    )


class ReadPosition(Base):
    """How far a user has read a room (public rooms too, so it is not the membership)."""

    __tablename__ = "read_position"
    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    room_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_read: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    updated_at: Mapped[datetime] = _now()
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "room_id"], ["room.tenant_id", "room.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["app_user.tenant_id", "app_user.id"], ondelete="CASCADE"
        ),
        Index("ix_read_position_user", "tenant_id", "user_id"),
    )


class Broadcast(Base):
    __tablename__ = "broadcast"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), nullable=False
    )
    sender: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    rooms: Mapped[list[str] | None] = mapped_column(JSONB(none_as_null=True))  # NULL = tenant
    created_at: Mapped[datetime] = _now()
    __table_args__ = (Index(None, "tenant_id", "id"),)


class IdempotencyKey(Base):
    """First answer to a request carrying an Idempotency-Key, replayed for 24 h."""

    __tablename__ = "idempotency_key"
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    response: Mapped[dict[str, object] | None] = mapped_column(JSONB)  # None: in progress
    created_at: Mapped[datetime] = _now()


class ApiKey(Base):
    """A backend's key: only its SHA-256 is kept. It acts as a service user named
    `@<name>` (the sender of what it publishes; `@` keeps it apart from people)."""

    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("tenant_id", "key_hash"),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["app_user.tenant_id", "app_user.id"], ondelete="CASCADE"
        ),
    )


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoint"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), nullable=False
    )
    url: Mapped[str] = mapped_column(Text, nullable=False)
    events: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (UniqueConstraint("tenant_id", "id"), Index(None, "tenant_id"))


class WebhookDelivery(Base):
    """The outbox: one row per (event, endpoint), written with the change that caused it."""

    __tablename__ = "webhook_delivery"
    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    type: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict[str, object]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = _now()
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime] = _now()
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoint.tenant_id", "webhook_endpoint.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index(
            "ix_webhook_delivery_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_delivery_endpoint_recent", "endpoint_id", "created_at"),
    )
