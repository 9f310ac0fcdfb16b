"""Tenants, users, logins and rooms for tests, made through the real services and HTTP."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from tests.support import LiveServer


@dataclass
class Account:
    tenant: str
    username: str
    password: str
    access_token: str
    refresh_token: str
    cookie: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class Factory:
    """Tenants, users, logins and rooms, made through the real services and HTTP."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.tenant_ids: dict[str, int] = {}

    def tenant(self, slug: str | None = None) -> str:
        slug = slug or f"t-{secrets.token_hex(3)}"

        async def make(s: Any) -> int:
            return int(await s.accounts.create_tenant(slug, slug.title()))

        self.tenant_ids[slug] = self.server.call(make)
        return slug

    def user(
        self,
        tenant: str,
        username: str,
        password: str = "correct horse battery",
        role: str = "member",
    ) -> str:
        tenant_id = self.tenant_ids.get(tenant) or self.server.call(
            lambda s: s.accounts.tenant_id(tenant)
        )
        self.server.call(lambda s: s.accounts.create_user(tenant_id, username, password, role))
        return password

    def login(
        self,
        tenant: str,
        username: str,
        password: str = "correct horse battery",
        server: LiveServer | None = None,
    ) -> Account:
        with (server or self.server).http() as client:
            r = client.post(
                "/auth/login", json={"tenant": tenant, "username": username, "password": password}
            )
        assert r.status_code == 200, r.text
        body = r.json()
        return Account(
            tenant,
            username,
            password,
            body["access_token"],
            body["refresh_token"],
            r.cookies["session"],
        )

    def account(
        self,
        tenant: str | None = None,
        username: str | None = None,
        role: str = "member",
        server: LiveServer | None = None,
    ) -> Account:
        """A new user (in a new tenant unless given), logged in on `server` (default: the
        shared one)."""
        tenant = tenant or self.tenant()
        username = username or f"u{secrets.token_hex(3)}"
        password = self.user(tenant, username, role=role)
        return self.login(tenant, username, password, server=server)

    def room(self, account: Account, name: str = "general", private: bool = False) -> str:
        with self.server.http() as client:
            r = client.post(
                "/rooms", json={"name": name, "private": private}, headers=account.headers
            )
        assert r.status_code == 201, r.text
        return name
