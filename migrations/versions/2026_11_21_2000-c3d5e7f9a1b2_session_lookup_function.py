"""switchboard_session_view(tenant, session): the per-request session check in one round trip.

It stamps the tenant with set_config(..., true), which lasts only for the calling statement's
own transaction, then reads the session under row-level security (SECURITY INVOKER: the
caller's role and policies apply, exactly as for the query it replaces).

Revision ID: c3d5e7f9a1b2
Revises: b7e1c2d4a9f0
Create Date: 2026-11-21 20:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c3d5e7f9a1b2"
down_revision: str | None = "b7e1c2d4a9f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION switchboard_session_view(p_tenant bigint, p_session uuid)
        RETURNS TABLE (id uuid, tenant_id bigint, slug text, uid bigint, username text,
                       role text, live boolean)
        LANGUAGE plpgsql SECURITY INVOKER AS $$
        BEGIN
          PERFORM set_config('app.tenant_id', p_tenant::text, true);
          RETURN QUERY
            SELECT s.id, s.tenant_id, t.slug::text, u.id, u.username::text, u.role::text,
                   (s.revoked_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL)
            FROM auth_session s
            JOIN app_user u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
            JOIN tenant t ON t.id = s.tenant_id
            WHERE s.tenant_id = p_tenant AND s.id = p_session;
        END $$
    """)
    op.execute(
        "GRANT EXECUTE ON FUNCTION switchboard_session_view(bigint, uuid) TO switchboard_app"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION switchboard_session_view(bigint, uuid)")
