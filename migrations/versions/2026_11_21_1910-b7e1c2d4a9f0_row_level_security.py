"""Row-level security: every tenant-owned table only shows the transaction's tenant.

The application runs as `switchboard_app` (not superuser, not BYPASSRLS, owns nothing), and
stamps each transaction with `set_config('app.tenant_id', …, true)`. A query that forgets its
tenant filter sees nothing of another tenant, and cannot write into one.

Revision ID: b7e1c2d4a9f0
Revises: 8f2b87c0803a
Create Date: 2026-11-21 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e1c2d4a9f0"
down_revision: str | None = "8f2b87c0803a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "switchboard_app"
TENANT_TABLES = (
    "app_user",
    "auth_session",
    "ws_ticket",
    "room",
    "membership",
    "message",
    "broadcast",
    "idempotency_key",
)
SHARED_TABLES = ("tenant", "login_throttle")  # the tenant directory and login throttling
CURRENT_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::bigint"


def upgrade() -> None:
    op.execute(f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
          END IF;
          IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
            EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
          END IF;
        END $$;
    """)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    tables = ", ".join(TENANT_TABLES + SHARED_TABLES)
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (tenant_id = {CURRENT_TENANT}) "
            f"WITH CHECK (tenant_id = {CURRENT_TENANT})"
        )
    # An Idempotency-Key is claimed (response NULL) before the work, answered after it.
    op.alter_column(
        "idempotency_key", "response", nullable=True, existing_type=sa.dialects.postgresql.JSONB()
    )


def downgrade() -> None:
    op.execute("DELETE FROM idempotency_key WHERE response IS NULL")
    op.alter_column(
        "idempotency_key", "response", nullable=False, existing_type=sa.dialects.postgresql.JSONB()
    )
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    tables = ", ".join(TENANT_TABLES + SHARED_TABLES)
    op.execute(f"REVOKE ALL ON {tables} FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
    # The role is cluster-wide: other databases may still use it, so it stays.
