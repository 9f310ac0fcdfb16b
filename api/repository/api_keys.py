"""API keys: stored as SHA-256 digests, looked up by (tenant, digest) on every request, so a
revoked key stops working at once on every worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update

from api.repository.base import Repo, api_key_t, user_t


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: int
    name: str
    scopes: list[str]
    user_id: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyIdentity:
    """A live key and the service user it acts as."""

    key: ApiKeyRow
    username: str


def _row(r: object) -> ApiKeyRow:
    return ApiKeyRow(r.id, r.name, list(r.scopes), r.user_id, r.created_at)  # type: ignore[attr-defined]


class ApiKeyRepo(Repo):
    async def create(
        self, name: str, key_hash: bytes, scopes: list[str], user_id: int
    ) -> ApiKeyRow:
        row = (
            await self.conn.execute(
                insert(api_key_t)
                .values(
                    tenant_id=self.tenant_id,
                    name=name,
                    key_hash=key_hash,
                    scopes=scopes,
                    user_id=user_id,
                )
                .returning(*api_key_t.c)
            )
        ).one()
        return _row(row)

    async def live(self) -> list[ApiKeyRow]:
        rows = await self.conn.execute(
            select(api_key_t)
            .where(api_key_t.c.tenant_id == self.tenant_id, api_key_t.c.revoked_at.is_(None))
            .order_by(api_key_t.c.id)
        )
        return [_row(r) for r in rows]

    async def revoke(self, key_id: int) -> bool:
        done = await self.conn.execute(
            update(api_key_t)
            .where(
                api_key_t.c.tenant_id == self.tenant_id,
                api_key_t.c.id == key_id,
                api_key_t.c.revoked_at.is_(None),
            )
            .values(revoked_at=func.now())
        )
        return bool(done.rowcount)

    async def by_hash(self, key_hash: bytes) -> ApiKeyIdentity | None:
        row = (
            await self.conn.execute(
                select(api_key_t, user_t.c.username)
                .join(
                    user_t,
                    (user_t.c.tenant_id == api_key_t.c.tenant_id)
                    & (user_t.c.id == api_key_t.c.user_id),
                )
                .where(
                    api_key_t.c.tenant_id == self.tenant_id,
                    api_key_t.c.key_hash == key_hash,
                    api_key_t.c.revoked_at.is_(None),
                )
            )
        ).one_or_none()
        return ApiKeyIdentity(_row(row), row.username) if row else None
