"""Initial data model: tenants, users, sessions, tickets, rooms, messages, broadcasts.

Every tenant-owned table carries tenant_id and its foreign keys include it.

Revision ID: 8f2b87c0803a
Revises:
Create Date: 2026-11-21 18:56:03.747182
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "8f2b87c0803a"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_table(
        "tenant",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenant_slug")),
    )
    op.create_table(
        "app_user",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), server_default="member", nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("role IN ('member', 'admin')", name=op.f("ck_app_user_role")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_app_user_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_app_user_tenant_id_id")),
        sa.UniqueConstraint("tenant_id", "username", name=op.f("uq_app_user_tenant_id_username")),
    )
    op.create_table(
        "broadcast",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("rooms", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_broadcast_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast")),
    )
    op.create_index(op.f("ix_broadcast_tenant_id"), "broadcast", ["tenant_id", "id"], unique=False)
    op.create_table(
        "idempotency_key",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_idempotency_key_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "scope", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_table(
        "auth_session",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("refresh_hash", sa.LargeBinary(), nullable=False),
        sa.Column("cookie_hash", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["app_user.tenant_id", "app_user.id"],
            name=op.f("fk_auth_session_tenant_id_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_session")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_auth_session_tenant_id_id")),
    )
    op.create_index(
        op.f("ix_auth_session_tenant_id"), "auth_session", ["tenant_id", "user_id"], unique=False
    )
    op.create_table(
        "room",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("private", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'", name=op.f("ck_room_name_format")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "created_by"],
            ["app_user.tenant_id", "app_user.id"],
            name=op.f("fk_room_tenant_id_created_by_app_user"),
            ondelete="SET NULL (created_by)",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name=op.f("fk_room_tenant_id_tenant"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_room")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_room_tenant_id_id")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_room_tenant_id_name")),
    )
    op.create_table(
        "membership",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("room_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "room_id"],
            ["room.tenant_id", "room.id"],
            name=op.f("fk_membership_tenant_id_room_id_room"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["app_user.tenant_id", "app_user.id"],
            name=op.f("fk_membership_tenant_id_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "room_id", "user_id", name=op.f("pk_membership")),
    )
    op.create_table(
        "message",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("room_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("sender_id", sa.BigInteger(), nullable=True),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="user", nullable=False),
        sa.Column("client_msg_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('user', 'broadcast')", name=op.f("ck_message_kind")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "room_id"],
            ["room.tenant_id", "room.id"],
            name=op.f("fk_message_tenant_id_room_id_room"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "sender_id"],
            ["app_user.tenant_id", "app_user.id"],
            name=op.f("fk_message_tenant_id_sender_id_app_user"),
            ondelete="SET NULL (sender_id)",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
        sa.UniqueConstraint("room_id", "seq", name=op.f("uq_message_room_id_seq")),
    )
    op.create_index(
        "uq_message_sender_client_msg_id",
        "message",
        ["tenant_id", "sender_id", "client_msg_id"],
        unique=True,
        postgresql_where=sa.text("client_msg_id IS NOT NULL"),
    )
    op.create_table(
        "ws_ticket",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "session_id"],
            ["auth_session.tenant_id", "auth_session.id"],
            name=op.f("fk_ws_ticket_tenant_id_session_id_auth_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_ws_ticket")),
    )
    op.create_index(op.f("ix_ws_ticket_expires_at"), "ws_ticket", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_ws_ticket_expires_at"), table_name="ws_ticket")
    op.drop_table("ws_ticket")
    op.drop_index(
        "uq_message_sender_client_msg_id",
        table_name="message",
        postgresql_where=sa.text("client_msg_id IS NOT NULL"),
    )
    op.drop_table("message")
    op.drop_table("membership")
    op.drop_table("room")
    op.drop_index(op.f("ix_auth_session_tenant_id"), table_name="auth_session")
    op.drop_table("auth_session")
    op.drop_table("idempotency_key")
    op.drop_index(op.f("ix_broadcast_tenant_id"), table_name="broadcast")
    op.drop_table("broadcast")
    op.drop_table("app_user")
    op.drop_table("tenant")
    op.drop_table("login_throttle")
