"""message.sender_id without a per-row foreign key check; users are deleted only with their
tenant.

Each inserted message's check of `fk_message_tenant_id_sender_id_app_user` locked the sender's
user row FOR KEY SHARE: a WAL record per message, and a MultiXact once two transactions (two
workers) hold the same user. On the persister's hot path it took 2.8 ms of a 9.4 ms statement
for 190 rows. The foreign key protected against two things, both now held another way:
- a sender id that is no user: sender ids come only from an authenticated principal, and
- a user deleted while their messages point at them (it set sender_id to NULL): a user row
  can no longer be deleted on its own; the tenant's deletion removes the user together with
  the tenant's rooms and so every message (the room foreign key cascades).

Revision ID: f6a8c0e2b4d6
Revises: e5f7a9b1c3d5
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "f6a8c0e2b4d6"
down_revision: str | None = "e5f7a9b1c3d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_message_tenant_id_sender_id_app_user"


def upgrade() -> None:
    op.drop_constraint(FK, "message", type_="foreignkey")
    # pg_trigger_depth() is 1 for a DELETE statement on app_user itself and greater for the
    # cascade from a deleted tenant, which takes the tenant's messages with it.
    op.execute(
        """
        CREATE FUNCTION app_user_deleted_only_with_tenant() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF pg_trigger_depth() = 1 THEN
                RAISE EXCEPTION 'a user is deleted only with their tenant'
                    USING ERRCODE = 'restrict_violation',
                          HINT = 'message.sender_id refers to users without a foreign key';
            END IF;
            RETURN OLD;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER app_user_deleted_only_with_tenant BEFORE DELETE ON app_user "
        "FOR EACH ROW EXECUTE FUNCTION app_user_deleted_only_with_tenant()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER app_user_deleted_only_with_tenant ON app_user")
    op.execute("DROP FUNCTION app_user_deleted_only_with_tenant()")
    op.execute(
        "UPDATE message m SET sender_id = NULL WHERE sender_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM app_user u WHERE u.tenant_id = m.tenant_id AND u.id = m.sender_id)"
    )
    op.create_foreign_key(
        FK,
        "message",
        "app_user",
        ["tenant_id", "sender_id"],
        ["tenant_id", "id"],
        ondelete="SET NULL (sender_id)",
    )
