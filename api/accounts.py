"""AccountService: tenants and users (create, list, disable), shared by the admin API and
the CLI. Name rules are checked here, so every entry point gets the same answer."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from api import events
from api.db import Database
from api.errors import Conflict, UserNotFound, ValidationFailed, busy_hashing
from api.repository import Role, UserRow
from api.rules import check_new_password, is_slug, is_username
from api.security import HashingBusy, PasswordHasher


class AccountService:
    def __init__(
        self, db: Database, hasher: PasswordHasher, publish: events.PublishTenantEvent
    ) -> None:
        self.db = db
        self.hasher = hasher
        self._publish = publish

    async def create_tenant(self, slug: str, name: str) -> int:
        if not is_slug(slug):
            raise ValidationFailed(
                f"invalid tenant slug {slug!r}: use lowercase letters, digits and '-'"
            )
        try:
            async with self.db.tx() as tx:
                return await tx.tenants.create(slug, name)
        except IntegrityError as exc:
            raise Conflict(f"tenant {slug!r} already exists") from exc

    async def tenant_id(self, slug: str) -> int | None:
        async with self.db.tx() as tx:
            return await tx.tenants.id_by_slug(slug)

    async def users(self, tenant_id: int) -> list[UserRow]:
        async with self.db.tx(tenant_id) as tx:
            return await tx.users.all()

    async def create_user(
        self, tenant_id: int, username: str, password: str, role: Role | str
    ) -> UserRow:
        if not is_username(username):
            raise ValidationFailed(f"invalid username {username!r}")
        try:
            check_new_password(password)
        except ValueError as exc:
            raise ValidationFailed(f"weak or invalid password: {exc}") from exc
        try:
            password_hash = await self.hasher.hash(password)
        except HashingBusy as exc:  # the hashing process died under this request
            raise busy_hashing(exc) from exc
        try:
            async with self.db.tx(tenant_id) as tx:
                return await tx.users.create(username, password_hash, Role(role))
        except IntegrityError as exc:
            raise Conflict(f"user {username!r} already exists") from exc

    async def disable_user(self, tenant_id: int, username: str) -> None:
        """Disable (never delete: history keeps its sender), revoke every session, and close
        the user's sockets on every worker."""
        async with self.db.tx(tenant_id) as tx:
            user_id = await tx.users.disable(username)
            if user_id is None:
                raise UserNotFound()
            await tx.sessions.revoke_user(user_id)
            await tx.webhooks.enqueue("user.disabled", {"user": username})
        await self._publish(tenant_id, events.simple_event(events.REVOKE_USER, str(user_id)))
