"""AuthService: login, refresh, logout, WebSocket tickets, and every credential -> Principal.

Access tokens are JWTs checked against a live session; refresh tokens, session cookies and
tickets are opaque `<tenant>.<session>.<secret>` strings stored as hashes.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from api import events, metrics
from api.db import Database
from api.delegated import DelegatedSessions
from api.errors import (
    ExpiredToken,
    InvalidCredentials,
    InvalidToken,
    RateLimited,
    Revoked,
    busy_hashing,
)
from api.principal import Principal
from api.repository import SessionView, Tx
from api.security import (
    HashingBusy,
    OpaqueToken,
    PasswordHasher,
    TokenCodec,
    TokenError,
    digest,
    same_digest,
)
from api.settings import Settings


@dataclass(frozen=True, slots=True)
class Issued:
    access_token: str
    expires_in: int
    refresh_token: str
    cookie: str | None  # a new session cookie to set, or None to leave it as it is


class AuthService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        hasher: PasswordHasher,
        publish: events.PublishTenantEvent,
    ) -> None:
        self.db = db
        self.settings = settings
        self.hasher = hasher
        self.tokens = TokenCodec(settings.auth)
        self.delegated = DelegatedSessions(db, settings, self.tokens)
        self._publish = publish

    def origin_allowed(self, origin: str | None) -> bool:
        """The one Origin check: cookie-authenticated unsafe requests and cookie sockets."""
        return origin is not None and origin in self.settings.http.allowed_origins

    # login / refresh / logout ------------------------------------------------
    async def login(self, tenant: str, username: str, password: str, address: str) -> Issued:
        try:  # admission first: a login the hashing budget cannot serve costs nothing more
            self.hasher.admit()
        except HashingBusy as exc:
            metrics.LOGINS_SHED.inc()
            raise busy_hashing(exc) from exc
        limits = self.settings.limits
        keys = [f"user:{tenant}/{username}", f"addr:{address}"]
        window = limits.login_window_seconds
        user = None
        async with self.db.tx() as tx:  # one transaction: throttle, tenant, then its user
            wait = await tx.throttle.reserve(
                keys, [limits.login_failures_per_user, limits.login_failures_per_address], window
            )
            tenant_id = await tx.tenants.id_by_slug(tenant) if wait <= 0 else None
            if tenant_id is not None:
                user = await (await tx.for_tenant(tenant_id)).users.by_name(username)
        if wait > 0:
            raise RateLimited(wait, "too many failed logins; try again later")
        try:
            ok, new_hash = await self.hasher.verify(password, user.password_hash if user else None)
        except HashingBusy as exc:  # the hashing process died under this login
            raise busy_hashing(exc) from exc
        if user is None or not ok or user.disabled:
            raise InvalidCredentials()  # the attempt is already counted (reserved)
        async with self.db.tx(user.tenant_id) as tx:
            if new_hash:
                await tx.users.set_password_hash(user.id, new_hash)
            await tx.throttle.clear(keys[0])
            await tx.throttle.release(keys[1])  # a success is not a failure of the address
            return await self._open_session(tx, user.id, user.role)

    async def _open_session(self, tx: Tx, user_id: int, role: str) -> Issued:
        tenant_id = tx.sessions.tenant_id
        session_id = uuid.uuid4()
        refresh = OpaqueToken.new(tenant_id, session_id)
        cookie = OpaqueToken.new(tenant_id, session_id)
        await tx.sessions.create(
            user_id,
            session_id,
            digest(refresh.secret),
            digest(cookie.secret),
            self.settings.auth.refresh_ttl_seconds,
        )
        access, _ = self.tokens.issue(
            user_id=user_id, tenant_id=tenant_id, role=role, session_id=session_id
        )
        return Issued(access, self.settings.auth.access_ttl_seconds, str(refresh), str(cookie))

    async def refresh(self, refresh_token: str) -> Issued:
        """Rotates the pair. A refresh token that was already rotated away is a sign of
        theft: the whole session is revoked, and every socket of it closed."""
        token = OpaqueToken.parse(refresh_token)
        if token is None:
            raise InvalidToken("malformed refresh token")
        async with self.db.tx(token.tenant_id) as tx:
            secrets = await tx.sessions.secrets_for_update(token.session_id)
            view = await tx.sessions.view(token.session_id)
            if secrets is None or view is None:
                raise InvalidToken("unknown refresh token")
            if not view.live:
                raise Revoked()
            if same_digest(token.secret, secrets.refresh_hash):
                fresh = OpaqueToken.new(token.tenant_id, token.session_id)
                await tx.sessions.rotate_refresh(
                    token.session_id, digest(fresh.secret), self.settings.auth.refresh_ttl_seconds
                )
                access, _ = self.tokens.issue(
                    user_id=view.user_id,
                    tenant_id=view.tenant_id,
                    role=view.role,
                    session_id=view.session_id,
                )
                # Only the refresh token rotates; the browser's session cookie stays valid.
                return Issued(access, self.settings.auth.access_ttl_seconds, str(fresh), None)
            await tx.sessions.revoke(token.session_id)
        await self._announce_revoked(token.tenant_id, token.session_id)
        raise Revoked("refresh token reuse detected; the session is revoked")

    async def logout(self, principal: Principal) -> None:
        async with self.db.tx(principal.tenant_id) as tx:
            await tx.sessions.revoke(principal.session_id)
        await self._announce_revoked(principal.tenant_id, principal.session_id)

    async def _announce_revoked(self, tenant_id: int, session_id: uuid.UUID) -> None:
        await self._publish(tenant_id, events.simple_event(events.REVOKE_SESSION, str(session_id)))

    # credentials -> Principal ------------------------------------------------
    async def from_access_token(self, token: str) -> Principal:
        issuer = self.delegated.issuer_of(token)
        if issuer is not None:  # a token of the app's own identity provider
            return await self.delegated.principal(issuer, token)
        try:
            claims = self.tokens.decode(token)
        except TokenError as exc:
            raise (ExpiredToken() if exc.reason == "expired_token" else InvalidToken()) from exc
        view = await self._live_session(claims.tenant_id, claims.session_id)
        if view.user_id != claims.user_id:
            raise InvalidToken()
        return Principal.of_session(view, claims.expires_at)

    async def from_cookie(self, cookie: str) -> Principal:
        token = OpaqueToken.parse(cookie)
        if token is None:
            raise InvalidToken("malformed session cookie")
        async with self.db.tx(token.tenant_id) as tx:
            secrets = await tx.sessions.secrets_for_update(token.session_id)
        if secrets is None or not same_digest(token.secret, secrets.cookie_hash):
            raise InvalidToken("unknown session cookie")
        view = await self._live_session(token.tenant_id, token.session_id)
        return Principal.of_session(view, self._session_credential_expiry())

    async def issue_ticket(self, principal: Principal) -> tuple[str, int]:
        return await self.ticket_for(principal.tenant_id, principal.session_id)

    async def mint_ticket(self, tenant_id: int, username: str, *, create: bool) -> tuple[str, int]:
        """A ticket for one of the tenant's users, on a session of its own (`/tokens/ws-ticket`)."""
        session_id = await self.delegated.ticket_session(tenant_id, username, create=create)
        return await self.ticket_for(tenant_id, session_id)

    async def ticket_for(self, tenant_id: int, session_id: uuid.UUID) -> tuple[str, int]:
        ttl = self.settings.auth.ticket_ttl_seconds
        ticket = OpaqueToken.new(tenant_id, session_id)
        async with self.db.tx(tenant_id) as tx:
            await tx.tickets.create(session_id, digest(ticket.secret), ttl)
        return str(ticket), ttl

    async def from_ticket(self, ticket: str) -> Principal:
        token = OpaqueToken.parse(ticket)
        if token is None:
            raise InvalidToken("malformed ticket")
        async with self.db.tx(token.tenant_id) as tx:
            redeemed = await tx.tickets.redeem(digest(token.secret))
        if redeemed is None or redeemed.session_id != token.session_id:
            raise InvalidToken("unknown or already used ticket")
        if not redeemed.fresh:
            raise ExpiredToken("the ticket has expired")
        view = await self._live_session(token.tenant_id, token.session_id)
        return Principal.of_session(view, self._session_credential_expiry())

    def _session_credential_expiry(self) -> int:
        """A socket opened by cookie or ticket lives as long as an access token would."""
        return int(time.time()) + self.settings.auth.access_ttl_seconds

    async def _live_session(self, tenant_id: int, session_id: uuid.UUID) -> SessionView:
        view = await self.db.session_view(tenant_id, session_id)
        if view is None:
            raise InvalidToken()
        if not view.live:
            raise Revoked()
        return view
