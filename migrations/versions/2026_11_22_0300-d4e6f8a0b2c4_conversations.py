"""Conversations: direct rooms, read positions, edits and deletions, retention.

- room.dm_key: "<lower user id>:<higher user id>" for a direct room, unique per tenant, so
  two simultaneous `POST /dms` of the same pair create one room (a constraint, not a check).
- room.retention_days (NULL: the global setting) and room.first_seq (the oldest kept seq).
- message.target (the entry an `edit`/`delete` acts on), edited_at, deleted_at.
- read_position: a member's last read seq per room (public rooms too, so no membership).

Revision ID: d4e6f8a0b2c4
Revises: c3d5e7f9a1b2
Create Date: 2026-11-22 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4e6f8a0b2c4"
down_revision: str | None = "c3d5e7f9a1b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "switchboard_app"
CURRENT_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::bigint"


def upgrade() -> None:
    op.add_column("room", sa.Column("dm_key", sa.String(64)))
    op.add_column("room", sa.Column("retention_days", sa.Integer()))
    op.add_column(
        "room", sa.Column("first_seq", sa.BigInteger(), nullable=False, server_default="1")
    )
    op.create_unique_constraint(op.f("uq_room_tenant_id_dm_key"), "room", ["tenant_id", "dm_key"])
    op.create_check_constraint(
        op.f("ck_room_retention_days"), "room", "retention_days IS NULL OR retention_days >= 0"
    )

    op.add_column("message", sa.Column("target", sa.BigInteger()))
    op.add_column("message", sa.Column("edited_at", sa.DateTime(timezone=True)))
    op.add_column("message", sa.Column("deleted_at", sa.DateTime(timezone=True)))
    op.drop_constraint(op.f("ck_message_kind"), "message", type_="check")
    op.create_check_constraint(
        op.f("ck_message_kind"), "message", "kind IN ('user', 'broadcast', 'edit', 'delete')"
    )
    op.create_check_constraint(
        op.f("ck_message_target"), "message", "(target IS NOT NULL) = (kind IN ('edit', 'delete'))"
    )
    # The edits of one message, found again when it is deleted (their text is erased too).
    op.create_index(
        op.f("ix_message_target"),
        "message",
        ["room_id", "target"],
        postgresql_where=sa.text("target IS NOT NULL"),
    )

    op.create_table(
        "read_position",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("room_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("last_read", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "room_id", "user_id", name="pk_read_position"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "room_id"],
            ["room.tenant_id", "room.id"],
            ondelete="CASCADE",
            name="fk_read_position_tenant_id_room_id_room",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["app_user.tenant_id", "app_user.id"],
            ondelete="CASCADE",
            name="fk_read_position_tenant_id_user_id_app_user",
        ),
    )
    op.create_index(op.f("ix_read_position_user"), "read_position", ["tenant_id", "user_id"])
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON read_position TO {APP_ROLE}")
    op.execute("ALTER TABLE read_position ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE read_position FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON read_position "
        f"USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})"
    )


def downgrade() -> None:
    op.drop_table("read_position")
    op.drop_index(op.f("ix_message_target"), table_name="message")
    op.drop_constraint(op.f("ck_message_target"), "message", type_="check")
    op.drop_constraint(op.f("ck_message_kind"), "message", type_="check")
    # Edit and delete entries cannot exist in the older schema.
    op.execute("DELETE FROM message WHERE kind IN ('edit', 'delete')")
    op.create_check_constraint(op.f("ck_message_kind"), "message", "kind IN ('user', 'broadcast')")
    op.drop_column("message", "deleted_at")
    op.drop_column("message", "edited_at")
    op.drop_column("message", "target")
    op.drop_constraint(op.f("ck_room_retention_days"), "room", type_="check")
    op.drop_constraint(op.f("uq_room_tenant_id_dm_key"), "room", type_="unique")
    op.drop_column("room", "first_seq")
    op.drop_column("room", "retention_days")
    op.drop_column("room", "dm_key")
