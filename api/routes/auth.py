"""`/auth/*`: login, refresh, logout, me, ws-ticket."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import CHECKED_INPUT, Auth, CurrentPrincipal
from api.errors import error_responses
from api.schemas import LoginIn, MeOut, RefreshIn, TicketOut, TokenPair
from api.sessions import AuthService, Issued
from api.ws_auth import SESSION_COOKIE

router = APIRouter(
    prefix="/auth",
    tags=["auth"],
    dependencies=CHECKED_INPUT,
    responses=error_responses(401, 403, 422, 429, 503),
)


def _secure(request: Request, auth: AuthService) -> bool:
    """The session cookie is Secure when asked for, and always over HTTPS (served directly,
    or behind a trusted proxy that says X-Forwarded-Proto: https)."""
    return auth.settings.http.secure_cookies or request.url.scheme == "https"


def _pair(issued: Issued, request: Request, response: Response, auth: AuthService) -> TokenPair:
    if issued.cookie is not None:
        response.set_cookie(
            SESSION_COOKIE,
            issued.cookie,
            max_age=auth.settings.auth.refresh_ttl_seconds,
            httponly=True,
            samesite="lax",
            path="/",
            secure=_secure(request, auth),
        )
    response.headers["Cache-Control"] = "no-store"
    return TokenPair(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
    )


@router.post("/login", response_model=TokenPair)
async def login(body: LoginIn, request: Request, response: Response, auth: Auth) -> TokenPair:
    # uvicorn's proxy-headers middleware puts the forwarded address here, but only for
    # requests from server.forwarded_allow_ips: a client cannot pick its throttling address.
    address = request.client.host if request.client else "unknown"
    issued = await auth.login(body.tenant, body.username, body.password, address)
    return _pair(issued, request, response, auth)


@router.post("/refresh", response_model=TokenPair)
async def refresh(body: RefreshIn, request: Request, response: Response, auth: Auth) -> TokenPair:
    return _pair(await auth.refresh(body.refresh_token), request, response, auth)


@router.post("/logout", status_code=204)
async def logout(principal: CurrentPrincipal, request: Request, auth: Auth) -> Response:
    await auth.logout(principal)
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request, auth),
    )
    return response


@router.get("/me", response_model=MeOut)
async def me(principal: CurrentPrincipal) -> MeOut:
    return MeOut(username=principal.username, tenant=principal.tenant, role=principal.role)


@router.post("/ws-ticket", response_model=TicketOut)
async def ws_ticket(principal: CurrentPrincipal, auth: Auth) -> TicketOut:
    ticket, ttl = await auth.issue_ticket(principal)
    return TicketOut(ticket=ticket, expires_in=ttl)
