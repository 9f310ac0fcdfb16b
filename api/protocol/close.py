"""Every way the server closes a socket, and what a client must do about it.

This is the one table of close codes and reasons: the server closes only with a member of
`Close`, the protocol document and the clients are written from it. A client decides from
the pair (code, reason) alone:

- `reconnect`: reconnect with capped, full-jitter exponential backoff and resume each room
  with `since` (nothing is lost: the server has every committed message);
- `refresh`: get a fresh access token first, then reconnect as above;
- `stop`: do not reconnect on your own; the user or the app must act (log in again, fix the
  origin, close other tabs).
"""

from __future__ import annotations

from enum import Enum, IntEnum, StrEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
    RESTART = 1012
    TRY_AGAIN = 1013


class ClientAction(StrEnum):
    RECONNECT = "reconnect"
    REFRESH = "refresh"
    STOP = "stop"


class Close(Enum):
    """(code, reason, what the client does, what happened)."""

    INVALID_TOKEN = (
        CloseCode.POLICY,
        "invalid_token",
        ClientAction.STOP,
        "the credential is malformed, forged, unknown or an already used ticket",
    )
    EXPIRED_TOKEN = (
        CloseCode.POLICY,
        "expired_token",
        ClientAction.REFRESH,
        "the access token (or ticket) expired; an in-band `auth` frame before expiry avoids it",
    )
    REVOKED = (
        CloseCode.POLICY,
        "revoked",
        ClientAction.STOP,
        "the session was logged out or revoked, or the user was disabled",
    )
    ORIGIN_NOT_ALLOWED = (
        CloseCode.POLICY,
        "origin_not_allowed",
        ClientAction.STOP,
        "cookie authentication from an Origin that is not in http.allowed_origins",
    )
    AUTH_TIMEOUT = (
        CloseCode.POLICY,
        "auth_timeout",
        ClientAction.STOP,
        "no credential in the URL or cookie, and no `auth` frame within ws.auth_timeout",
    )
    TOO_MANY_SOCKETS = (
        CloseCode.POLICY,
        "too_many_sockets",
        ClientAction.STOP,
        "the user already has limits.sockets_per_user sockets open (on every worker)",
    )
    REMOVED = (
        CloseCode.POLICY,
        "removed",
        ClientAction.STOP,
        "an SSE stream's user was removed from its private room (sockets get `left` instead)",
    )
    IDLE = (
        CloseCode.NORMAL,
        "idle",
        ClientAction.STOP,
        "no frame from the client for ws.idle_timeout seconds; reconnect when there is work",
    )
    SLOW_CONSUMER = (
        CloseCode.TRY_AGAIN,
        "slow_consumer",
        ClientAction.RECONNECT,
        "the client did not read fast enough and its bounded send queue overflowed",
    )
    OVERLOADED = (
        CloseCode.TRY_AGAIN,
        "overloaded",
        ClientAction.RECONNECT,
        "the server sheds connections it cannot serve now, or could not replay a join's history",
    )
    SHUTDOWN = (
        CloseCode.RESTART,
        "shutdown",
        ClientAction.RECONNECT,
        "the worker is stopping (deploy, restart); another one serves the reconnect",
    )

    code: CloseCode
    reason: str
    action: ClientAction
    meaning: str

    def __init__(self, code: CloseCode, reason: str, action: ClientAction, meaning: str) -> None:
        self.code = code
        self.reason = reason
        self.action = action
        self.meaning = meaning


# Closes that carry no reason of ours: the WebSocket layer's own, and client-initiated ones.
UNREASONED_ACTIONS: dict[CloseCode, ClientAction] = {
    CloseCode.NORMAL: ClientAction.STOP,
    CloseCode.GOING_AWAY: ClientAction.RECONNECT,
    CloseCode.TOO_BIG: ClientAction.RECONNECT,
    CloseCode.INTERNAL: ClientAction.RECONNECT,
    CloseCode.RESTART: ClientAction.RECONNECT,
    CloseCode.TRY_AGAIN: ClientAction.RECONNECT,
}


def client_action(code: int, reason: str) -> ClientAction:
    """What a client does after a close (any unknown close: reconnect with backoff)."""
    for close in Close:
        if close.code == code and close.reason == reason:
            return close.action
    if code == CloseCode.POLICY:
        return ClientAction.STOP
    try:
        return UNREASONED_ACTIONS[CloseCode(code)]
    except (ValueError, KeyError):
        return ClientAction.RECONNECT
