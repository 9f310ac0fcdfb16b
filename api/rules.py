"""The input rules every entry point shares (HTTP bodies, frames, the CLI): names of
tenants, users and rooms, passwords, and text PostgreSQL can store."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

ROOM_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
# Hashing cost grows with the input: a bound keeps one login's cost bounded.
MAX_PASSWORD_BYTES = 1024
MIN_PASSWORD_LENGTH = 8

RoomName = Annotated[str, Field(pattern=ROOM_NAME_PATTERN)]
Username = Annotated[str, Field(pattern=USERNAME_PATTERN)]

_ROOM_NAME = re.compile(ROOM_NAME_PATTERN)
_USERNAME = re.compile(USERNAME_PATTERN)
_SLUG = re.compile(SLUG_PATTERN)


def is_room_name(name: str) -> bool:
    return _ROOM_NAME.fullmatch(name) is not None


def is_username(name: str) -> bool:
    return _USERNAME.fullmatch(name) is not None


def is_slug(slug: str) -> bool:
    return _SLUG.fullmatch(slug) is not None


def check_password_length(value: str) -> str:
    """Too long is a 422, never a 500 or a slow hash."""
    if len(value.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password must be at most {MAX_PASSWORD_BYTES} bytes")
    return value


def check_new_password(value: str) -> str:
    check_password_length(value)
    if len(value) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if "\x00" in value:
        raise ValueError("password must not contain NUL characters")
    return value


# PostgreSQL's text refuses NUL, and UTF-8 cannot encode a lone surrogate (JSON's "\ud800").
# Such text is the client's mistake: refused where it enters (422, 401 for login,
# body_invalid over the socket), never a database error.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_TEXT = "text must not contain NUL characters or unpaired surrogates"


def has_unstorable_text(value: Any) -> bool:
    """Whether any string in a decoded JSON value (keys included) cannot be stored."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(has_unstorable_text(k) or has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_unstorable_text(v) for v in value)
    return False


def json_may_hold_unstorable_text(raw: str | bytes) -> bool:
    """A cheap first look at raw JSON: valid JSON can carry NUL or a surrogate only as a
    \\u escape (raw control characters are invalid JSON, raw surrogates invalid UTF-8)."""
    if isinstance(raw, bytes):
        return b"\\u" in raw
    return "\\u" in raw
