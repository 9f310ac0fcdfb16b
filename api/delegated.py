"""Users whose password lives elsewhere: the app's identity provider (`auth.issuers`) or its
backend (`POST /tokens` with an API key). They are created on first sight, with no usable
password (`/auth/login` refuses them); a disabled one is refused everywhere.

Each credential gets a session of its own (so logout, revocation and tickets work as for a
password login): a minted token a new one; an external token the one named by its issuer,
user and `jti` (found again on every use of that token: one round trip, as for ours).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from api.db import Database
from api.errors import ExpiredToken, InvalidToken, Revoked, UserNotFound
from api.issuers import ExternalIssuers
from api.principal import Principal
from api.repository import Role, UserRow
from api.rules import is_username
from api.security import TokenCodec
from api.settings import IssuerSettings, Settings

NO_PASSWORD = "!"  # not a hash of anything: every password check fails
SESSION_NAMESPACE = uuid.UUID("5b1e7c2a-9d3f-4e8a-b6c1-2f0d9a7e4c35")


class DelegatedSessions:
    def __init__(self, db: Database, settings: Settings, tokens: TokenCodec) -> None:
        self.db = db
        self.settings = settings
        self.tokens = tokens
        self.issuers = ExternalIssuers(settings.auth)
        self._tenant_ids: dict[str, int] = {}  # slugs never change: cached once found

    # minted by the app's backend ---------------------------------------------------
    async def access_token(
        self, tenant_id: int, username: str, *, create: bool, ttl: int
    ) -> tuple[str, int]:
        user, session_id = await self._session(tenant_id, username, create, ttl)
        token, _ = self.tokens.issue(
            user_id=user.id, tenant_id=tenant_id, role=user.role, session_id=session_id, ttl=ttl
        )
        return token, ttl

    async def ticket_session(self, tenant_id: int, username: str, *, create: bool) -> uuid.UUID:
        """A session to issue a WebSocket ticket on (it lasts as long as the ticket)."""
        _, session_id = await self._session(
            tenant_id, username, create, self.settings.auth.ticket_ttl_seconds
        )
        return session_id

    async def _session(
        self, tenant_id: int, username: str, create: bool, ttl: int
    ) -> tuple[UserRow, uuid.UUID]:
        if not is_username(username):
            raise UserNotFound(f"invalid username {username!r}")
        session_id = uuid.uuid4()
        async with self.db.tx(tenant_id) as tx:
            user = await tx.users.by_name(username)
            if user is None and create:
                user = await tx.users.ensure(username, NO_PASSWORD, Role.MEMBER)
            if user is None or user.disabled:
                raise UserNotFound()
            await tx.sessions.ensure(user.id, session_id, ttl)
        return user, session_id

    # tokens of the app's identity provider --------------------------------------------
    def issuer_of(self, token: str) -> IssuerSettings | None:
        return self.issuers.issuer_of(token)

    async def principal(self, issuer: IssuerSettings, token: str) -> Principal:
        claims = await self.issuers.verify(issuer, token)
        slug = issuer.tenant or claims.get(issuer.tenant_claim)
        username = claims.get(issuer.username_claim)
        if not isinstance(slug, str) or not isinstance(username, str) or not is_username(username):
            raise InvalidToken("the token does not name a valid tenant and user")
        tenant_id = await self._tenant_id(slug)
        expires_at = int(claims["exp"])
        ttl = expires_at - int(time.time())
        if ttl <= 0:
            raise ExpiredToken()
        which = claims.get("jti") or claims.get("iat") or expires_at
        session_id = uuid.uuid5(
            SESSION_NAMESPACE, f"{issuer.issuer}|{tenant_id}|{username}|{which}"
        )
        view = await self.db.session_view(tenant_id, session_id)
        if view is None:  # the first use of this token
            await self._first_sight(tenant_id, username, _role(issuer, claims), session_id, ttl)
            view = await self.db.session_view(tenant_id, session_id)
        if view is None:
            raise InvalidToken()
        if not view.live:
            raise Revoked()
        return Principal.of_session(view, expires_at)

    async def _first_sight(
        self, tenant_id: int, username: str, role: str | None, session_id: uuid.UUID, ttl: int
    ) -> None:
        async with self.db.tx(tenant_id) as tx:
            user = await tx.users.ensure(username, NO_PASSWORD, role or Role.MEMBER)
            if user.disabled:
                raise Revoked("this user is disabled")
            if role is not None and user.role != role:
                await tx.users.set_role(user.id, role)  # the identity provider decides
            await tx.sessions.ensure(user.id, session_id, ttl)

    async def _tenant_id(self, slug: str) -> int:
        found = self._tenant_ids.get(slug)
        if found is None:
            async with self.db.tx() as tx:
                found = await tx.tenants.id_by_slug(slug)
            if found is None:
                raise InvalidToken("the token names no tenant of this server")
            self._tenant_ids[slug] = found
        return found


def _role(issuer: IssuerSettings, claims: dict[str, Any]) -> str | None:
    if issuer.role_claim is None:
        return None
    return (
        Role.ADMIN.value if claims.get(issuer.role_claim) == Role.ADMIN.value else Role.MEMBER.value
    )
