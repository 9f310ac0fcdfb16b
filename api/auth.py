"""Authentication: the Principal, the AuthService (login, refresh, logout, tickets) and the
one pipeline that turns an HTTP request or a WebSocket into a Principal."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from sqlalchemy.exc import IntegrityError

from api import events
from api.errors import (
    APIError,
    Conflict,
    CsrfRejected,
    ExpiredToken,
    Forbidden,
    InvalidCredentials,
    InvalidToken,
    RateLimited,
    Revoked,
    Unauthorized,
    Unavailable,
    UserNotFound,
)
from api.repository import Database, Repository, SessionView, UserRow
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

SESSION_COOKIE = "session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Publish = Callable[[int, str], Awaitable[None]]  # (tenant_id, tenant event payload)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    tenant_id: int
    tenant: str
    role: str
    session_id: uuid.UUID
    expires_at: int  # epoch seconds: when this credential stops being valid

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class Issued:
    access_token: str
    expires_in: int
    refresh_token: str
    cookie: str | None  # a new session cookie to set, or None to leave it as it is


def _principal(view: SessionView, expires_at: int) -> Principal:
    return Principal(
        view.user_id,
        view.username,
        view.tenant_id,
        view.tenant_slug,
        view.role,
        view.session_id,
        expires_at,
    )


class AuthService:
    def __init__(self, db: Database, settings: Settings, publish: Publish) -> None:
        self.db = db
        self.settings = settings
        self.hasher = PasswordHasher(settings.auth)
        self.tokens = TokenCodec(settings.auth)
        self._publish = publish

    # accounts ----------------------------------------------------------------
    async def create_tenant(self, slug: str, name: str) -> int:
        try:
            async with self.db.tx() as repo:
                return await repo.create_tenant(slug, name)
        except IntegrityError as exc:
            raise Conflict(f"tenant {slug!r} already exists") from exc

    async def tenant_id(self, slug: str) -> int | None:
        async with self.db.tx() as repo:
            return await repo.tenant_id_by_slug(slug)

    async def users(self, tenant_id: int) -> list[UserRow]:
        async with self.db.tx(tenant_id) as repo:
            return await repo.list_users(tenant_id)

    async def create_user(self, tenant_id: int, username: str, password: str, role: str) -> UserRow:
        password_hash = await self.hasher.hash(password)
        try:
            async with self.db.tx(tenant_id) as repo:
                return await repo.create_user(tenant_id, username, password_hash, role)
        except IntegrityError as exc:
            raise Conflict(f"user {username!r} already exists") from exc

    async def disable_user(self, tenant_id: int, username: str) -> None:
        async with self.db.tx(tenant_id) as repo:
            user_id = await repo.disable_user(tenant_id, username)
            if user_id is None:
                raise UserNotFound()
            await repo.revoke_user_sessions(tenant_id, user_id)
        await self._publish(tenant_id, events.simple_event(events.REVOKE_USER, str(user_id)))

    # login / refresh / logout ------------------------------------------------
    async def login(self, tenant: str, username: str, password: str, address: str) -> Issued:
        limits = self.settings.limits
        keys = [f"user:{tenant}/{username}", f"addr:{address}"]
        window = limits.login_window_seconds
        user = None
        async with self.db.tx() as repo:  # one transaction: throttle, tenant, then its user
            wait = await repo.throttle_retry_after(
                keys, [limits.login_failures_per_user, limits.login_failures_per_address], window
            )
            tenant_id = await repo.tenant_id_by_slug(tenant) if wait <= 0 else None
            if tenant_id is not None:
                await repo.set_tenant(tenant_id)
                user = await repo.user_by_name(tenant_id, username)
        if wait > 0:
            raise RateLimited(wait, "too many failed logins; try again later")
        try:
            ok, new_hash = await self.hasher.verify(password, user.password_hash if user else None)
        except HashingBusy as exc:
            raise Unavailable(
                "too many logins in progress; retry shortly", headers={"Retry-After": "1"}
            ) from exc
        if user is None or not ok or user.disabled:
            async with self.db.tx() as repo:
                await repo.record_login_failure(keys, window)
            raise InvalidCredentials()
        async with self.db.tx(user.tenant_id) as repo:
            if new_hash:
                await repo.set_password_hash(user.tenant_id, user.id, new_hash)
            await repo.clear_login_failures(keys[0])
            return await self._open_session(repo, user.tenant_id, user.id, user.role)

    async def _open_session(
        self, repo: Repository, tenant_id: int, user_id: int, role: str
    ) -> Issued:
        session_id = uuid.uuid4()
        refresh = OpaqueToken.new(tenant_id, session_id)
        cookie = OpaqueToken.new(tenant_id, session_id)
        await repo.create_session(
            tenant_id,
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
        reused = False
        async with self.db.tx(token.tenant_id) as repo:
            hashes = await repo.session_secret_hashes(token.tenant_id, token.session_id)
            view = await repo.session_view(token.tenant_id, token.session_id)
            if hashes is None or view is None:
                raise InvalidToken("unknown refresh token")
            if not view.live:
                raise Revoked()
            if same_digest(token.secret, hashes[0]):
                fresh = OpaqueToken.new(token.tenant_id, token.session_id)
                await repo.rotate_refresh(
                    token.tenant_id,
                    token.session_id,
                    digest(fresh.secret),
                    self.settings.auth.refresh_ttl_seconds,
                )
                access, _ = self.tokens.issue(
                    user_id=view.user_id,
                    tenant_id=view.tenant_id,
                    role=view.role,
                    session_id=view.session_id,
                )
                # Only the refresh token rotates; the browser's session cookie stays valid.
                return Issued(access, self.settings.auth.access_ttl_seconds, str(fresh), None)
            await repo.revoke_session(token.tenant_id, token.session_id)
            reused = True
        if reused:
            await self._announce_revoked(token.tenant_id, token.session_id)
        raise Revoked("refresh token reuse detected; the session is revoked")

    async def logout(self, principal: Principal) -> None:
        async with self.db.tx(principal.tenant_id) as repo:
            await repo.revoke_session(principal.tenant_id, principal.session_id)
        await self._announce_revoked(principal.tenant_id, principal.session_id)

    async def _announce_revoked(self, tenant_id: int, session_id: uuid.UUID) -> None:
        await self._publish(tenant_id, events.simple_event(events.REVOKE_SESSION, str(session_id)))

    # credentials -> Principal ------------------------------------------------
    async def from_access_token(self, token: str) -> Principal:
        try:
            claims = self.tokens.decode(token)
        except TokenError as exc:
            raise (ExpiredToken() if exc.reason == "expired_token" else InvalidToken()) from exc
        view = await self._live_session(claims.tenant_id, claims.session_id)
        if view.user_id != claims.user_id:
            raise InvalidToken()
        return _principal(view, claims.expires_at)

    async def from_cookie(self, cookie: str) -> Principal:
        token = OpaqueToken.parse(cookie)
        if token is None:
            raise InvalidToken("malformed session cookie")
        async with self.db.tx(token.tenant_id) as repo:
            hashes = await repo.session_secret_hashes(token.tenant_id, token.session_id)
        if hashes is None or not same_digest(token.secret, hashes[1]):
            raise InvalidToken("unknown session cookie")
        view = await self._live_session(token.tenant_id, token.session_id)
        return _principal(view, int(time.time()) + self.settings.auth.access_ttl_seconds)

    async def issue_ticket(self, principal: Principal) -> tuple[str, int]:
        ttl = self.settings.auth.ticket_ttl_seconds
        ticket = OpaqueToken.new(principal.tenant_id, principal.session_id)
        async with self.db.tx(principal.tenant_id) as repo:
            await repo.create_ticket(
                principal.tenant_id, principal.session_id, digest(ticket.secret), ttl
            )
        return str(ticket), ttl

    async def from_ticket(self, ticket: str) -> Principal:
        token = OpaqueToken.parse(ticket)
        if token is None:
            raise InvalidToken("malformed ticket")
        async with self.db.tx(token.tenant_id) as repo:
            redeemed = await repo.redeem_ticket(token.tenant_id, digest(token.secret))
        if redeemed is None or redeemed[0] != token.session_id:
            raise InvalidToken("unknown or already used ticket")
        if not redeemed[1]:
            raise ExpiredToken("the ticket has expired")
        view = await self._live_session(token.tenant_id, token.session_id)
        return _principal(view, int(time.time()) + self.settings.auth.access_ttl_seconds)

    async def _live_session(self, tenant_id: int, session_id: uuid.UUID) -> SessionView:
        view = await self.db.session_view(tenant_id, session_id)
        if view is None:
            raise InvalidToken()
        if not view.live:
            raise Revoked()
        return view


# HTTP -------------------------------------------------------------------------
def _auth(request: Request) -> AuthService:
    auth: AuthService = request.app.state.services.auth
    return auth


async def get_auth(request: Request) -> AuthService:
    """A dependency. `async` on purpose: FastAPI runs plain `def` dependencies on a thread
    pool, which would cost every request a thread hop."""
    return _auth(request)


async def current_principal(request: Request) -> Principal:
    """Bearer token first; else the session cookie, which must come from an allowed Origin
    for unsafe methods (CSRF)."""
    auth = _auth(request)
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("expected `Authorization: Bearer <token>`")
        return await auth.from_access_token(token.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        if request.method not in SAFE_METHODS and (
            request.headers.get("origin") not in auth.settings.http.allowed_origins
        ):
            raise CsrfRejected()
        return await auth.from_cookie(cookie)
    raise Unauthorized()


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("admin role required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]


# WebSocket ----------------------------------------------------------------------
class WsAuthFailed(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ClientGone(Exception):
    """The client disconnected before it authenticated."""


def close_reason(exc: APIError) -> str:
    """The 1008 close reason for an authentication failure."""
    if isinstance(exc, ExpiredToken | Revoked):
        return exc.code
    return "invalid_token"


async def authenticate_websocket(ws: WebSocket, auth: AuthService) -> Principal:
    """The one WebSocket pipeline, called after accept: query (ticket or token), then the
    session cookie (exact Origin allowlist), then a first `auth` frame within the timeout.
    Raises WsAuthFailed(reason); the caller closes with 1008 and that reason."""
    try:
        ticket = ws.query_params.get("ticket")
        if ticket:
            return await auth.from_ticket(ticket)
        token = ws.query_params.get("token")
        if token:
            return await auth.from_access_token(token)
        cookie = ws.cookies.get(SESSION_COOKIE)
        if cookie:
            if ws.headers.get("origin") not in auth.settings.http.allowed_origins:
                raise WsAuthFailed("origin_not_allowed")
            return await auth.from_cookie(cookie)
        return await auth.from_access_token(await _first_frame_token(ws, auth))
    except APIError as exc:
        raise WsAuthFailed(close_reason(exc)) from exc


async def _first_frame_token(ws: WebSocket, auth: AuthService) -> str:
    try:
        message = await asyncio.wait_for(ws.receive(), auth.settings.ws.auth_timeout)
    except TimeoutError as exc:
        raise WsAuthFailed("auth_timeout") from exc
    if message["type"] == "websocket.disconnect":
        raise ClientGone()
    try:
        frame = json.loads(message.get("text") or "")
    except ValueError as exc:
        raise WsAuthFailed("invalid_token") from exc
    if not isinstance(frame, dict) or frame.get("type") != "auth" or not frame.get("token"):
        raise WsAuthFailed("invalid_token")
    return str(frame["token"])
