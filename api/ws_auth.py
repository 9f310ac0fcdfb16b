"""The one WebSocket authentication pipeline, called after accept: query (ticket or token),
then the session cookie (exact Origin allowlist), then a first `auth` frame within the
timeout. Failures become a `Close` the caller sends (1008 with the reason)."""

from __future__ import annotations

import asyncio
import json

from fastapi import WebSocket

from api.errors import APIError, ExpiredToken, Revoked
from api.principal import Principal
from api.protocol import Close
from api.sessions import AuthService

SESSION_COOKIE = "session"


class WsAuthFailed(Exception):
    def __init__(self, close: Close) -> None:
        self.close = close
        super().__init__(close.reason)


class ClientGone(Exception):
    """The client disconnected before it authenticated."""


def auth_close(exc: APIError) -> Close:
    """The close for an authentication failure: only expiry and revocation are told apart
    (a client refreshes after the first and stops after the second)."""
    if isinstance(exc, ExpiredToken):
        return Close.EXPIRED_TOKEN
    if isinstance(exc, Revoked):
        return Close.REVOKED
    return Close.INVALID_TOKEN


async def authenticate_websocket(ws: WebSocket, auth: AuthService) -> Principal:
    try:
        ticket = ws.query_params.get("ticket")
        if ticket:
            return await auth.from_ticket(ticket)
        token = ws.query_params.get("token")
        if token:
            return await auth.from_access_token(token)
        cookie = ws.cookies.get(SESSION_COOKIE)
        if cookie:
            if not auth.origin_allowed(ws.headers.get("origin")):
                raise WsAuthFailed(Close.ORIGIN_NOT_ALLOWED)
            return await auth.from_cookie(cookie)
        return await auth.from_access_token(await _first_frame_token(ws, auth))
    except APIError as exc:
        raise WsAuthFailed(auth_close(exc)) from exc


async def _first_frame_token(ws: WebSocket, auth: AuthService) -> str:
    try:
        message = await asyncio.wait_for(ws.receive(), auth.settings.ws.auth_timeout)
    except TimeoutError as exc:
        raise WsAuthFailed(Close.AUTH_TIMEOUT) from exc
    if message["type"] == "websocket.disconnect":
        raise ClientGone()
    try:
        frame = json.loads(message.get("text") or "")
    except (ValueError, RecursionError) as exc:  # RecursionError: `[[[[…` nested 10,000 deep
        raise WsAuthFailed(Close.INVALID_TOKEN) from exc
    if not isinstance(frame, dict) or frame.get("type") != "auth" or not frame.get("token"):
        raise WsAuthFailed(Close.INVALID_TOKEN)
    return str(frame["token"])
