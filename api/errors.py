"""One error family for HTTP and WebSocket alike (close codes: api.protocol.close).

A service raises an APIError; HTTP renders it as `{"error","detail"}` with its status,
the WebSocket renders the same error as an `error` frame with the same code.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.security import HashingBusy


class APIError(Exception):
    status = 400
    code = "bad_request"
    detail = "bad request"

    def __init__(
        self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        self.detail = detail or type(self).detail
        self.headers = headers
        self.extra = extra
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


class InvalidFrame(APIError):
    status, code, detail = 422, "invalid_frame", "the frame is not valid"


class ValidationFailed(APIError):
    status, code, detail = 422, "validation_error", "the request is not valid"


class BodyInvalid(APIError):
    status, code, detail = 422, "body_invalid", "the message body is empty or too long"


class Unauthorized(APIError):
    status, code, detail = 401, "unauthorized", "authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class InvalidCredentials(Unauthorized):
    code, detail = "invalid_credentials", "invalid tenant, username or password"


class InvalidToken(Unauthorized):
    code, detail = "invalid_token", "the token is invalid"


class ExpiredToken(Unauthorized):
    code, detail = "expired_token", "the token has expired"


class Revoked(Unauthorized):
    code, detail = "revoked", "the session has been revoked"


class Forbidden(APIError):
    status, code, detail = 403, "forbidden", "not allowed"


class PrivateRoom(Forbidden):
    """A private room the caller is not admitted to (api.rooms decides who is)."""

    detail = "this room is private"


class CsrfRejected(APIError):
    status, code, detail = 403, "csrf", "cookie-authenticated request from a disallowed origin"


class NotFound(APIError):
    status, code, detail = 404, "not_found", "not found"


class RoomNotFound(NotFound):
    code, detail = "room_not_found", "room not found"


class UserNotFound(NotFound):
    code, detail = "user_not_found", "user not found"


class MessageNotFound(NotFound):
    code, detail = "message_not_found", "no message at that seq"


class NotJoined(APIError):
    status, code, detail = 409, "not_joined", "join the room first"


class Conflict(APIError):
    status, code, detail = 409, "conflict", "already exists"


class LimitExceeded(APIError):
    status, code, detail = 429, "limit_exceeded", "limit exceeded"


class RateLimited(APIError):
    status, code, detail = 429, "rate_limited", "too many requests"

    def __init__(self, retry_after: float, detail: str | None = None) -> None:
        self.retry_after = max(retry_after, 0.001)
        super().__init__(
            detail,
            headers={"Retry-After": str(max(1, int(self.retry_after + 0.999)))},
            retry_after=round(self.retry_after, 3),
        )


class Unavailable(APIError):
    status, code, detail = 503, "unavailable", "a backing service is unavailable; retry"


class Internal(APIError):
    """A bug on the server: the only 500, and still in the error shape."""

    status, code, detail = 500, "internal", "the server failed; this is a bug"


class ErrorOut(BaseModel):
    """The body of every error answer."""

    error: str
    detail: str


_DESCRIPTIONS = {
    401: "not authenticated: a missing, invalid, expired or revoked credential",
    403: "forbidden, or a cookie-authenticated request from a disallowed Origin (`csrf`)",
    404: "no such room, user or resource (another tenant's are exactly as missing)",
    409: "conflict: it exists already, or an Idempotency-Key is in progress",
    422: "the request is not valid (`validation_error`, `body_invalid`)",
    429: "rate limited: retry after the `Retry-After` header",
    503: "a backing service is briefly unavailable (`unavailable`): retry",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a router: what it answers besides success, in the error
    shape (this also replaces FastAPI's default 422 body, which the server never sends)."""
    return {s: {"model": ErrorOut, "description": _DESCRIPTIONS[s]} for s in statuses}


def busy_hashing(exc: HashingBusy) -> Unavailable:
    """The password-hashing budget is spent (or a hashing process died): retry shortly."""
    return Unavailable(
        "too many logins right now; retry shortly",
        headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
    )


def infrastructure_error(exc: BaseException) -> APIError | None:
    """Postgres or Redis is unreachable: a 503 / `unavailable` the client can retry,
    never a 500. Errors that mean a bug (constraint, syntax) are not mapped."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.IntegrityError | sa.DataError | sa.ProgrammingError):
        return None
    if isinstance(
        exc,
        sa.DBAPIError
        | sa.TimeoutError
        | sa.DisconnectionError
        | OSError
        | RedisConnectionError
        | RedisTimeoutError,
    ):
        return Unavailable()
    return None


def error_response(status: int, code: str, detail: str, **kw: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, **kw)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_error", _describe_validation(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        mapped = infrastructure_error(exc)
        if mapped is not None:
            return JSONResponse(mapped.body(), status_code=mapped.status)
        logging.getLogger("switchboard").error("unhandled error", exc_info=exc)
        return JSONResponse(Internal().body(), status_code=Internal.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return error_response(
            exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None)
        )
