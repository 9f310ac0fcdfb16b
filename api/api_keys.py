"""API keys for an app's backend: created by admins, shown once, scoped, revoked at once.

A key is `sbk_<tenant id>_<32 random bytes, base64url>`. Only its SHA-256 is stored: the
secret is random, so a slow password hash would add nothing, and a leaked table holds no
usable key. Every request looks the key up (one indexed query, like a session check), so a
revoked key stops working on every worker at the same moment.
"""

from __future__ import annotations

import secrets
import time
import uuid

from api.db import Database
from api.delegated import NO_PASSWORD
from api.errors import Forbidden, InvalidToken, NotFound, ValidationFailed
from api.principal import Principal
from api.repository import Role
from api.repository.api_keys import ApiKeyRow
from api.rules import is_username
from api.security import MAX_DATABASE_ID, digest

PREFIX = "sbk_"
SCOPES = frozenset({"publish", "tokens", "admin"})
KEY_NAMESPACE = uuid.UUID("0f7c4a6e-3b8d-4c2f-9e1a-7d5b2c8f4e91")
# A key-authenticated request is valid for as long as it runs; this stands in for an expiry.
KEY_CREDENTIAL_SECONDS = 60


class ApiKeyService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, p: Principal, name: str, scopes: list[str]) -> tuple[ApiKeyRow, str]:
        """The key's row and the key itself, which is never shown again."""
        if not is_username(name):
            raise ValidationFailed(f"invalid key name {name!r} (letters, digits, _ . -)")
        unknown = set(scopes) - SCOPES
        if not scopes or unknown:
            raise ValidationFailed(f"scopes must be some of {sorted(SCOPES)}")
        secret = secrets.token_urlsafe(32)
        async with self.db.tx(p.tenant_id) as tx:
            # The key acts as `@<name>`: a user no one can log in as, nor message.
            user = await tx.users.ensure(f"@{name}", NO_PASSWORD, Role.MEMBER)
            row = await tx.api_keys.create(name, digest(secret), sorted(set(scopes)), user.id)
        return row, f"{PREFIX}{p.tenant_id}_{secret}"

    async def list(self, p: Principal) -> list[ApiKeyRow]:
        async with self.db.tx(p.tenant_id) as tx:
            return await tx.api_keys.live()

    async def revoke(self, p: Principal, key_id: int) -> None:
        async with self.db.tx(p.tenant_id) as tx:
            if not await tx.api_keys.revoke(key_id):
                raise NotFound("no such API key")

    async def authenticate(self, key: str) -> Principal:
        tenant, _, secret = key.removeprefix(PREFIX).partition("_")
        if not (tenant.isascii() and tenant.isdigit()) or not secret:
            raise InvalidToken("malformed API key")
        tenant_id = int(tenant)
        if tenant_id > MAX_DATABASE_ID:
            raise InvalidToken("malformed API key")
        async with self.db.tx(tenant_id) as tx:
            found = await tx.api_keys.by_hash(digest(secret))
            slug = await tx.tenants.slug_of(tenant_id) if found else None
        if found is None or slug is None:
            raise InvalidToken("unknown or revoked API key")
        scopes = frozenset(found.key.scopes)
        return Principal(
            found.key.user_id,
            found.username,
            tenant_id,
            slug,
            Role.ADMIN.value if "admin" in scopes else Role.MEMBER.value,
            uuid.uuid5(KEY_NAMESPACE, str(found.key.id)),
            int(time.time()) + KEY_CREDENTIAL_SECONDS,
            scopes,
        )


def require_scope(p: Principal, scope: str) -> None:
    if p.is_service and not p.has_scope(scope):
        raise Forbidden(f"this API key lacks the `{scope}` scope")
