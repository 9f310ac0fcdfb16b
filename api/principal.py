"""Who is calling: the result of every authentication, HTTP or WebSocket."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from api.repository import Role, SessionView


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    tenant_id: int
    tenant: str
    role: str
    session_id: uuid.UUID
    expires_at: int  # epoch seconds: when this credential stops being valid
    scopes: frozenset[str] | None = None  # an API key's; None for a person

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_service(self) -> bool:
        """An app's backend, through an API key (acting as its `@<name>` user)."""
        return self.scopes is not None

    def has_scope(self, scope: str) -> bool:
        return self.scopes is not None and scope in self.scopes

    @classmethod
    def of_session(cls, view: SessionView, expires_at: int) -> Principal:
        return cls(
            view.user_id,
            view.username,
            view.tenant_id,
            view.tenant_slug,
            view.role,
            view.session_id,
            expires_at,
        )
