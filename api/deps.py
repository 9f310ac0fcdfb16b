"""FastAPI dependencies, as `Annotated` aliases every route uses. All are `async`: FastAPI
runs plain `def` dependencies on a thread pool, which would cost every request a hop."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from api.accounts import AccountService
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


async def current_principal(request: Request) -> Principal:
    """Bearer token first; else the session cookie, which must come from an allowed Origin
    for unsafe methods (CSRF)."""
    auth = services_of(request).auth
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("expected `Authorization: Bearer <token>`")
        return await auth.from_access_token(token.strip())
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


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("admin role required")
    return principal


ServicesDep = Annotated[Services, Depends(_services)]
Auth = Annotated[AuthService, Depends(_auth)]
Accounts = Annotated[AccountService, Depends(_accounts)]
Rooms = Annotated[RoomService, Depends(_rooms)]
Broadcasts = Annotated[BroadcastService, Depends(_broadcasts)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
# For every HTTP router: APIRouter(dependencies=CHECKED_INPUT).
CHECKED_INPUT = [Depends(reject_unstorable_text)]
