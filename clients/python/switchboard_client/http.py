"""The client's HTTP calls: errors as SwitchboardError, tickets for the WebSocket."""

from __future__ import annotations

from typing import Any

import httpx

from switchboard_client.auth import AuthFailed


class SwitchboardError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        self.code, self.detail = code, detail
        super().__init__(f"{code}: {detail}")


async def call(url: str, token: str, method: str, path: str, **kw: Any) -> Any:
    """One authenticated request; a 4xx/5xx raises SwitchboardError with the server's code."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        r = await http.request(method, path, headers={"authorization": f"Bearer {token}"}, **kw)
    body = r.json()
    if r.status_code >= 400:
        raise SwitchboardError(body.get("error", "error"), body.get("detail", ""))
    return body


async def ws_ticket(url: str, token: str) -> str:
    """A single-use ticket: a long-lived token never goes into a URL."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        r = await http.post("/auth/ws-ticket", headers={"authorization": f"Bearer {token}"})
    if r.status_code == 401:
        raise AuthFailed(r.text)
    r.raise_for_status()
    return str(r.json()["ticket"])
