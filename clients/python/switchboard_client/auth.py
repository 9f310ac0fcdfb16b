"""Where access tokens come from. A client takes any `async () -> str`; `PasswordLogin` is
the one for scripts that log in with a Switchboard password (it refreshes by itself)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx

GetToken = Callable[[], Awaitable[str]]
# A cached token is renewed this long before it expires. It must exceed the client's own
# `refresh_margin` (30 s by default): when the socket asks for a token to extend itself, it
# must get a new one, not the one about to expire.
REFRESH_MARGIN_SECONDS = 60.0


class AuthFailed(Exception):
    """The credentials were refused (the client stops instead of retrying)."""


class PasswordLogin:
    def __init__(
        self,
        url: str,
        tenant: str,
        username: str,
        password: str,
        *,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
    ) -> None:
        self.url = url.rstrip("/")
        self.tenant, self.username, self.password = tenant, username, password
        self.refresh_margin = refresh_margin
        self._token: str | None = None
        self._refresh: str | None = None
        self._expires = 0.0

    async def __call__(self) -> str:
        if self._token is not None and time.time() < self._expires - self.refresh_margin:
            return self._token
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            answer = None
            if self._refresh is not None:
                r = await http.post("/auth/refresh", json={"refresh_token": self._refresh})
                answer = r if r.status_code == 200 else None
            if answer is None:
                answer = await http.post(
                    "/auth/login",
                    json={
                        "tenant": self.tenant,
                        "username": self.username,
                        "password": self.password,
                    },
                )
            if answer.status_code in (401, 403):
                raise AuthFailed(answer.text)
            answer.raise_for_status()
        body = answer.json()
        self._token, self._refresh = body["access_token"], body["refresh_token"]
        self._expires = time.time() + body["expires_in"]
        return str(self._token)
