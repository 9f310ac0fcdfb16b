"""FastAPI dependencies, as `Annotated` aliases every route uses. All are `async`: FastAPI
runs plain `def` dependencies on a thread pool, which would cost every request a hop."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from api.accounts import AccountService
from api.api_keys import PREFIX as API_KEY_PREFIX
from api.api_keys import require_scope
from api.broadcasts import BroadcastService
from api.errors import (
    CsrfRejected,
    Forbidden,
    InvalidCredentials,
    InvalidToken,
    Unauthorized,
    ValidationFailed,
)
from api.principal import Principal
from api.rooms import RoomService
from api.rules import UNSTORABLE_TEXT, has_unstorable_text, json_may_hold_unstorable_text
from api.services import Services
from api.sessions import AuthService
from api.ws_auth import SESSION_COOKIE

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATH = "/auth/login"


def services_of(conn: HTTPConnection) -> Services:
    """The app's services (also for WebSocket routes, which take no dependencies)."""
    services: Services = conn.app.state.services
    return services


async def _services(request: Request) -> Services:
    return services_of(request)


async def _auth(request: Request) -> AuthService:
    return services_of(request).auth


async def _accounts(request: Request) -> AccountService:
    return services_of(request).accounts


async def _rooms(request: Request) -> RoomService:
    return services_of(request).rooms


async def _broadcasts(request: Request) -> BroadcastService:
    return services_of(request).broadcasts


async def caller(request: Request) -> Principal:
    """A person or an app's backend. Bearer first (an access token, or an API key); else the
    session cookie, which must come from an allowed Origin for unsafe methods (CSRF)."""
    auth = services_of(request).auth
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("expected `Authorization: Bearer <token>`")
        if token.startswith(API_KEY_PREFIX):
            return await services_of(request).api_keys.authenticate(token)
        return await auth.from_access_token(token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        if request.method not in SAFE_METHODS and not auth.origin_allowed(
            request.headers.get("origin")
        ):
            raise CsrfRejected()
        return await auth.from_cookie(cookie)
    raise Unauthorized()


async def reject_unstorable_text(request: Request) -> None:
    """Every HTTP route's one text check (api.rules): the path, the query and a JSON body
    must not carry NUL or unpaired surrogates. A login is refused like any bad login."""
    bad = "\x00" in request.url.path or any(
        has_unstorable_text(k) or has_unstorable_text(v)
        for k, v in request.query_params.multi_items()
    )
    if not bad and request.method not in SAFE_METHODS:
        raw = await request.body()  # read once: FastAPI parses the same cached bytes
        if json_may_hold_unstorable_text(raw):
            try:
                bad = has_unstorable_text(json.loads(raw))
            except (ValueError, RecursionError):
                bad = False  # not JSON: the route's own validation answers that
    if bad:
        if request.url.path == LOGIN_PATH:
            raise InvalidCredentials()
        raise ValidationFailed(UNSTORABLE_TEXT)


async def current_principal(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    """A person (most endpoints): an API key gets 403."""
    if principal.is_service:
        raise Forbidden("an API key cannot call this endpoint")
    return principal


async def admin_principal(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    """An admin, or an API key with the `admin` scope."""
    require_scope(principal, "admin")
    if not principal.is_admin:
        raise Forbidden("admin role required")
    return principal


async def publisher_principal(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    """A person, or an API key with the `publish` scope."""
    require_scope(principal, "publish")
    return principal


async def token_minter(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    """An API key with the `tokens` scope (or an admin, to try it by hand)."""
    if not principal.is_service and not principal.is_admin:
        raise Forbidden("minting tokens needs an API key with the `tokens` scope")
    require_scope(principal, "tokens")
    return principal


ServicesDep = Annotated[Services, Depends(_services)]
Auth = Annotated[AuthService, Depends(_auth)]
Accounts = Annotated[AccountService, Depends(_accounts)]
Rooms = Annotated[RoomService, Depends(_rooms)]
Broadcasts = Annotated[BroadcastService, Depends(_broadcasts)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
PublisherPrincipal = Annotated[Principal, Depends(publisher_principal)]
TokenMinter = Annotated[Principal, Depends(token_minter)]
# For every HTTP router: APIRouter(dependencies=CHECKED_INPUT).
CHECKED_INPUT = [Depends(reject_unstorable_text)]
