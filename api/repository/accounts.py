"""Tenants and users."""

from __future__ import annotations

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from api.repository.base import Repo, tenant_t, user_t
from api.repository.rows import UserRow, user_row


class TenantRepo(Repo):
    """Tenants are not tenant-owned: these work in a transaction opened without a tenant."""

    async def create(self, slug: str, name: str) -> int:
        created = await self.conn.execute(
            insert(tenant_t).values(slug=slug, name=name).returning(tenant_t.c.id)
        )
        return int(created.scalar_one())

    async def id_by_slug(self, slug: str) -> int | None:
        found = await self.conn.execute(select(tenant_t.c.id).where(tenant_t.c.slug == slug))
        tenant_id = found.scalar_one_or_none()
        return None if tenant_id is None else int(tenant_id)

    async def slug_of(self, tenant_id: int) -> str | None:
        found = await self.conn.execute(select(tenant_t.c.slug).where(tenant_t.c.id == tenant_id))
        slug = found.scalar_one_or_none()
        return None if slug is None else str(slug)

    async def all_ids(self) -> list[int]:
        return [int(t) for t in (await self.conn.execute(select(tenant_t.c.id))).scalars()]


class UserRepo(Repo):
    async def create(self, username: str, password_hash: str, role: str) -> UserRow:
        created = await self.conn.execute(
            insert(user_t)
            .values(
                tenant_id=self.tenant_id,
                username=username,
                password_hash=password_hash,
                role=role,
            )
            .returning(*user_t.c)
        )
        return user_row(created.one())

    async def ensure(self, username: str, password_hash: str, role: str) -> UserRow:
        """The user, created if missing (a concurrent creation is found, not an error)."""
        await self.conn.execute(
            pg_insert(user_t)
            .values(
                tenant_id=self.tenant_id,
                username=username,
                password_hash=password_hash,
                role=role,
            )
            .on_conflict_do_nothing(index_elements=[user_t.c.tenant_id, user_t.c.username])
        )
        found = await self.by_name(username)
        assert found is not None
        return found

    async def set_role(self, user_id: int, role: str) -> None:
        await self.conn.execute(
            update(user_t)
            .where(user_t.c.tenant_id == self.tenant_id, user_t.c.id == user_id)
            .values(role=role)
        )

    async def by_name(self, username: str) -> UserRow | None:
        row = (
            await self.conn.execute(
                select(user_t).where(
                    user_t.c.tenant_id == self.tenant_id, user_t.c.username == username
                )
            )
        ).one_or_none()
        return user_row(row) if row else None

    async def all(self) -> list[UserRow]:
        rows = await self.conn.execute(
            select(user_t)
            .where(user_t.c.tenant_id == self.tenant_id, ~user_t.c.username.startswith("@"))
            .order_by(user_t.c.username)
        )
        return [user_row(r) for r in rows]

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self.conn.execute(
            update(user_t)
            .where(user_t.c.tenant_id == self.tenant_id, user_t.c.id == user_id)
            .values(password_hash=password_hash)
        )

    async def disable(self, username: str) -> int | None:
        """The user's id, or None if there is no such user."""
        row = await self.conn.execute(
            update(user_t)
            .where(user_t.c.tenant_id == self.tenant_id, user_t.c.username == username)
            .values(disabled_at=func.coalesce(user_t.c.disabled_at, func.now()))
            .returning(user_t.c.id)
        )
        user_id = row.scalar_one_or_none()
        return None if user_id is None else int(user_id)
