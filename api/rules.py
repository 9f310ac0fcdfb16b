"""The input rules every entry point shares (HTTP bodies, frames, the CLI): names of
tenants, users and rooms, and passwords."""

from __future__ import annotations

import re
from typing import Annotated

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
