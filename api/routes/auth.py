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


def _pair(issued: Issued, response: Response, auth: AuthService) -> TokenPair:
    if issued.cookie is not None:
        response.set_cookie(
            SESSION_COOKIE,
            issued.cookie,
            max_age=auth.settings.auth.refresh_ttl_seconds,
            httponly=True,
            samesite="lax",
            path="/",
            secure=auth.settings.http.secure_cookies,
        )
    response.headers["Cache-Control"] = "no-store"
    return TokenPair(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
    )


@router.post("/login", response_model=TokenPair)
async def login(body: LoginIn, request: Request, response: Response, auth: Auth) -> TokenPair:
    address = request.client.host if request.client else "unknown"
    issued = await auth.login(body.tenant, body.username, body.password, address)
    return _pair(issued, response, auth)


@router.post("/refresh", response_model=TokenPair)
async def refresh(body: RefreshIn, response: Response, auth: Auth) -> TokenPair:
    return _pair(await auth.refresh(body.refresh_token), response, auth)


@router.post("/logout", status_code=204)
async def logout(principal: CurrentPrincipal, auth: Auth) -> Response:
    await auth.logout(principal)
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=auth.settings.http.secure_cookies,
    )
    return response


@router.get("/me", response_model=MeOut)
async def me(principal: CurrentPrincipal) -> MeOut:
    return MeOut(username=principal.username, tenant=principal.tenant, role=principal.role)


@router.post("/ws-ticket", response_model=TicketOut)
async def ws_ticket(principal: CurrentPrincipal, auth: Auth) -> TicketOut:
    ticket, ttl = await auth.issue_ticket(principal)
    return TicketOut(ticket=ticket, expires_in=ttl)
